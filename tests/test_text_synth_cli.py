"""`viml synth` end to end on tiny files, the texts file format training reads, and caption import."""

from __future__ import annotations

import json

import pytest
from viml.core.errors import UserFacingError
from viml.demo.standin import StandInLMServer
from viml.engine.text import load_texts, read_tagged, sample_text, write_texts
from viml.engine.text.musictextclips import read_captions
from viml.engine.text.prompt2text import load_exemplars

from viml.cli import main

ITEMS = [
    {"id": "piano-1", "tags": {"MTT": {"piano": 0.8, "classical": 0.6, "slow": 0.5}, "MSD": {"sad": 0.4}}},
    {
        "id": "rock-1",
        "tags": {"MTT": {"guitar": 0.9, "rock": 0.8, "drums": 0.6}, "MSD": {"male vocalists": 0.5}},
    },
    {"id": "quiet-1", "tags": {"MTT": {"techno": 0.1}}},
]


@pytest.fixture
def tagged(tmp_path):
    path = tmp_path / "tags.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    return path


@pytest.mark.parametrize("method", ["tags", "data2text", "heldout"])
def test_synth_writes_texts_training_can_read(tmp_path, tagged, method, capsys):
    out = tmp_path / f"out-{method}.jsonl"
    assert main(["synth", str(tagged), "--method", method, "--per-item", "3", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["piano-1", "rock-1", "quiet-1"]
    assert all(r["method"] == method and 1 <= len(r["texts"]) <= 3 for r in records)
    assert len(records[0]["texts"]) == 3  # enough concepts for three distinct texts
    texts = load_texts(out)
    assert texts["quiet-1"]  # nothing above the threshold: the best tag still gives a text
    assert sample_text(texts, "piano-1", 0) in texts["piano-1"]
    assert sample_text(texts, "missing", 0) is None
    again = tmp_path / "again.jsonl"
    main(["synth", str(tagged), "--method", method, "--per-item", "3", "--out", str(again)])
    assert again.read_text() == out.read_text()  # same seed, same texts
    assert "wrote" in capsys.readouterr().out


def test_tags_method_is_shuffled_tags(tmp_path, tagged):
    out = tmp_path / "shuffled.jsonl"
    main(["synth", str(tagged), "--method", "tags", "--per-item", "4", "--out", str(out)])
    texts = load_texts(out)["rock-1"]
    assert len(texts) == 4
    assert {frozenset(t.split(", ")) for t in texts} == {
        frozenset({"guitar", "rock", "drums", "male vocalists"})
    }


def test_synth_prompt2text_against_a_server(tmp_path, tagged, monkeypatch, capsys):
    out = tmp_path / "p2t.jsonl"
    with StandInLMServer() as server:
        monkeypatch.setenv("VIML_LLM_URL", server.url)
        monkeypatch.setenv("VIML_LLM_MODEL", server.model)
        assert main(["synth", str(tagged), "--method", "prompt2text", "--out", str(out)]) == 0
        first = out.read_text()
        sent = len(server.requests)
        assert main(["synth", str(tagged), "--method", "prompt2text", "--out", str(out)]) == 0
        assert len(server.requests) == sent  # the rerun came from the cache
    assert out.read_text() == first and len(load_texts(out)) == 3
    assert "3 answers from the cache" in capsys.readouterr().out


def test_prompt2text_without_a_server_is_a_clear_error(tmp_path, tagged, monkeypatch, capsys):
    monkeypatch.delenv("VIML_LLM_URL", raising=False)
    monkeypatch.delenv("VIML_LLM_MODEL", raising=False)
    assert main(["synth", str(tagged), "--method", "prompt2text", "--out", str(tmp_path / "x.jsonl")]) == 1
    assert "no language model server configured" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "a", "tags": {"MTT": {"piano": 0.5}}}\nnot json\n', ":2: not JSON"),
        ('{"tags": {"MTT": {"piano": 0.5}}}\n', ":1: each line needs a non-empty string 'id'"),
        ('{"id": "a", "tags": {"MTT": {"piano": 7}}}\n', "probability must be a number in [0, 1]"),
    ],
)
def test_bad_tag_files_fail_clearly(tmp_path, content, message, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["synth", str(path), "--out", str(tmp_path / "o.jsonl")]) == 1
    assert message in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 1


def test_items_without_tags_are_reported_not_fatal(tmp_path, capsys):
    path = tmp_path / "some.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps({"id": "empty", "tags": {}}) + "\n")
    assert main(["synth", str(path), "--method", "data2text", "--out", str(tmp_path / "o.jsonl")]) == 0
    assert set(load_texts(tmp_path / "o.jsonl")) == {"piano-1"}
    assert "1 items got no text" in capsys.readouterr().err


def test_output_never_overwrites_the_input(tagged, capsys):
    before = tagged.read_text()
    assert main(["synth", str(tagged), "--method", "tags", "--out", str(tagged)]) == 1
    assert "would overwrite the input" in capsys.readouterr().err
    assert tagged.read_text() == before


def test_load_texts_merges_lines_and_filters_methods(tmp_path):
    path = tmp_path / "texts.jsonl"
    write_texts(path, {"a": ["one", "two"]}, "data2text")
    with path.open("a") as handle:
        handle.write(json.dumps({"id": "a", "method": "tags", "texts": ["two", "three", " "]}) + "\n")
    assert load_texts(path) == {"a": ["one", "two", "three"]}
    assert load_texts(path, methods=["tags"]) == {"a": ["two", "three"]}
    path.write_text('{"id": "a", "texts": "not a list"}\n')
    with pytest.raises(UserFacingError, match=":1: each line needs"):
        load_texts(path)


def test_import_musictextclips_captions(tmp_path, tagged, capsys):
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text(
        "video_id,start_time,caption\n"
        "piano-1,1:35,A sad solo piano piece played slowly.\n"
        'piano-1,95,"A slow, sad piano melody."\n'
        "rock-1,30,Energetic rock with a male singer.\n"
        "untagged,12.5,Ambient pads.\n"
        ",3,no id\n"
    )
    out, exemplars = tmp_path / "human.jsonl", tmp_path / "exemplars.json"
    args = [
        "synth",
        str(tagged),
        "--import-captions",
        str(csv_path),
        "--out",
        str(out),
        "--exemplars-out",
        str(exemplars),
    ]
    assert main(args) == 0
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["piano-1"]["texts"] == [
        "A sad solo piano piece played slowly.",
        "A slow, sad piano melody.",
    ]
    assert (records["piano-1"]["start_s"], records["piano-1"]["end_s"]) == (95.0, 105.0)
    assert records["untagged"]["method"] == "human"
    pairs = load_exemplars(exemplars)
    assert len(pairs) == 3  # the untagged clip has no tags to pair with
    assert set(pairs[0].tags) == {"piano", "classical", "slow", "sad"}
    # the imported exemplars drive prompt2text like the shipped ones
    with StandInLMServer() as server:
        p2t = tmp_path / "p2t.jsonl"
        code = main(["synth", str(tagged), "--method", "prompt2text", "--exemplars", str(exemplars),
                     "--llm-url", server.url, "--llm-model", "m", "--out", str(p2t)])  # fmt: skip
        assert code == 0
        assert "A slow, sad piano melody." in server.requests[0]["messages"][1]["content"]


def test_caption_files_without_the_needed_columns(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_text("name,comment\nx,y\n")
    with pytest.raises(UserFacingError, match="needs a video id column"):
        read_captions(path)
    path.write_text("ytid,start_s,text\nabc,later,nice\n")
    with pytest.raises(UserFacingError, match="is not seconds"):
        read_captions(path)


def test_read_tagged_yields_items(tagged):
    assert [item_id for item_id, _ in read_tagged(tagged)] == ["piano-1", "rock-1", "quiet-1"]
