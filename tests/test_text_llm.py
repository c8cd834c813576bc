"""The language model client over real HTTP against a local server (the model itself is the only mock)."""

from __future__ import annotations

import json

import pytest
from viml.demo.standin import Failure, StandInLMServer, stand_in_description
from viml.engine.text import synthesize, synthesize_collection
from viml.engine.text.llm import ChatClient, LLMConfig, LLMNotConfiguredError, LLMRequestError
from viml.engine.text.prompt2text import TextRejectedError
from viml.engine.text.tagset import active_concepts, contradictions

TAGS = {"MTT": {"piano": 0.8, "classical": 0.6, "slow": 0.5, "no vocals": 0.4}, "MSD": {"sad": 0.45}}
MESSAGES = [{"role": "user", "content": "Tags: piano, slow\nDescription:"}]


class Sleeps(list):
    """Records the waits instead of waiting, so retry tests are fast and can check the durations."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(server: StandInLMServer, tmp_path, sleeps=None, **config) -> ChatClient:
    config.setdefault("backoff_s", 0.5)
    return ChatClient(
        LLMConfig(server.url, server.model, **config),
        tmp_path / "llm",
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


def test_prompt2text_end_to_end_over_http(tmp_path):
    with StandInLMServer() as server, client_for(server, tmp_path) as client:
        text = synthesize(TAGS, "prompt2text", 0, client=client)
        request = server.requests[0]
    assert text == stand_in_description(request["messages"])
    assert request["model"] == server.model and request["messages"][0]["role"] == "system"
    assert request["messages"][1]["content"].endswith(
        "Tags: piano, classical, slow, sad, no vocals\nDescription:"
    )
    assert not contradictions(text, [f.concept for f in active_concepts(TAGS)])


def test_answers_are_cached_on_disk(tmp_path):
    with StandInLMServer() as server:
        with client_for(server, tmp_path) as client:
            first = client.complete(MESSAGES)
            assert client.complete(MESSAGES) == first
            assert (client.requests_sent, client.cache_hits) == (1, 1)
        with client_for(server, tmp_path) as rerun:  # a new process would find the same files
            assert rerun.complete(MESSAGES) == first
            assert rerun.requests_sent == 0
            other_model = ChatClient(LLMConfig(server.url, "another-model"), tmp_path / "llm")
            other_model.complete(MESSAGES)  # the key includes the model
            assert other_model.requests_sent == 1
        assert len(server.requests) == 2
    entries = list((tmp_path / "llm").rglob("*.json"))
    assert len(entries) == 2
    stored = json.loads(entries[0].read_text())
    assert set(stored) == {"request", "response"}


def test_damaged_cache_entry_is_refetched(tmp_path):
    with StandInLMServer() as server, client_for(server, tmp_path) as client:
        answer = client.complete(MESSAGES)
        (entry,) = (tmp_path / "llm").rglob("*.json")
        entry.write_text("{half")
        assert client.complete(MESSAGES) == answer
        assert client.requests_sent == 2


def test_retry_after_is_honoured_and_backoff_doubles(tmp_path):
    sleeps = Sleeps()
    failures = [Failure(429, {"Retry-After": "3"}), Failure(500), Failure(503)]
    with StandInLMServer(failures=failures) as server, client_for(server, tmp_path, sleeps) as client:
        assert client.complete(MESSAGES) == stand_in_description(MESSAGES)
        assert len(server.requests) == 4
    assert sleeps == [3.0, 1.0, 2.0]  # Retry-After, then 0.5 * 2**1, 0.5 * 2**2


def test_retries_give_up_with_a_clear_error(tmp_path):
    with (
        StandInLMServer(failures=[Failure(500)] * 10) as server,
        client_for(server, tmp_path, max_retries=2) as client,
    ):
        with pytest.raises(LLMRequestError, match="failed 3 times; last: HTTP 500: stand-in failure"):
            client.complete(MESSAGES)
        assert len(server.requests) == 3
    assert not list((tmp_path / "llm").rglob("*.json"))  # failures are never cached


def test_client_errors_are_not_retried(tmp_path):
    with StandInLMServer(api_key="right") as server:
        with (
            client_for(server, tmp_path, api_key="wrong") as client,
            pytest.raises(LLMRequestError, match="401"),
        ):
            client.complete(MESSAGES)
        with client_for(server, tmp_path, api_key="right") as client:
            assert client.complete(MESSAGES)
            assert client.requests_sent == 1


def test_timeouts_are_retried(tmp_path):
    sleeps = Sleeps()
    server = StandInLMServer(delay_s=0.5).start()
    client = client_for(server, tmp_path, sleeps, timeout_s=0.1, max_retries=1)
    try:
        with pytest.raises(LLMRequestError, match="Timeout"):
            client.complete(MESSAGES)
    finally:
        client.close()
        server.stop()
    assert sleeps == [0.5]


def test_unreachable_server(tmp_path):
    server = StandInLMServer()
    url = server.url
    server.stop()  # never started: the port is closed again
    client = ChatClient(LLMConfig(url, "m", max_retries=1, backoff_s=0), tmp_path, sleep=Sleeps())
    with pytest.raises(LLMRequestError, match="ConnectError"):
        client.complete(MESSAGES)


def test_rate_limit_paces_requests(tmp_path):
    sleeps = Sleeps()
    with StandInLMServer() as server, client_for(server, tmp_path, sleeps, requests_per_minute=60) as client:
        for index in range(3):
            client.complete([{"role": "user", "content": f"Tags: piano {index}\nDescription:"}])
    assert len(sleeps) == 2 and all(0.5 < s <= 2.0 for s in sleeps)  # about one second apart


def test_configuration_from_arguments_env_and_settings(monkeypatch):
    monkeypatch.delenv("VIML_LLM_URL", raising=False)
    monkeypatch.delenv("VIML_LLM_MODEL", raising=False)
    with pytest.raises(LLMNotConfiguredError, match="VIML_LLM_URL"):
        LLMConfig.from_env()
    from viml.core.settings import set_setting

    set_setting("llm_url", "http://settings:1/v1")
    set_setting("llm_model", "from-settings")
    assert LLMConfig.from_env().endpoint == "http://settings:1/v1/chat/completions"
    monkeypatch.setenv("VIML_LLM_URL", "http://env:2/v1/")
    monkeypatch.setenv("VIML_LLM_API_KEY", "k")
    config = LLMConfig.from_env(model="arg-model", timeout_s=None)
    assert (config.endpoint, config.model, config.api_key) == (
        "http://env:2/v1/chat/completions",
        "arg-model",
        "k",
    )
    assert LLMConfig("http://x/v1/chat/completions", "m").endpoint == "http://x/v1/chat/completions"


@pytest.mark.parametrize("body, message", [("not json", "invalid JSON"), ('{"choices": []}', "no choices")])
def test_unreadable_answers(tmp_path, body, message):
    server = StandInLMServer(failures=[Failure(200, body=body)]).start()
    client = client_for(server, tmp_path)
    try:
        with pytest.raises(LLMRequestError, match=message):
            client.complete(MESSAGES)
    finally:
        client.close()
        server.stop()


def test_rejected_answers_retry_with_new_prompts_then_fail(tmp_path):
    with StandInLMServer(responder=lambda messages: "A sad piano song with a male singer.") as server:
        with client_for(server, tmp_path) as client, pytest.raises(TextRejectedError, match="contradicts"):
            synthesize(TAGS, "prompt2text", 0, client=client)
        prompts = {json.dumps(r["messages"]) for r in server.requests}
    assert len(server.requests) == 3 and len(prompts) == 3


def test_collection_reports_items_without_text(tmp_path):
    def responder(messages):
        return "" if "techno" in messages[-1]["content"].split("\n\n")[-1] else stand_in_description(messages)

    items = {"a": TAGS, "b": {"MTT": {"techno": 0.9}}}
    with StandInLMServer(responder=responder) as server, client_for(server, tmp_path) as client:
        texts, failed = synthesize_collection(items, "prompt2text", per_item=2, seed=1, client=client)
    assert set(texts) == {"a"} and 1 <= len(texts["a"]) <= 2
    assert set(failed) == {"b"} and "empty" in failed["b"]
