"""A STAND-IN for a language model server, for tests and the synthetic-world benchmark. NOT an LLM.

`StandInLMServer` is a real HTTP server on localhost (in a thread) that answers the OpenAI-compatible
`POST /v1/chat/completions` exactly like llama.cpp or vLLM would, so the real client runs over the real
protocol. Its "model" reads the last `Tags:` line of the prompt and writes a description with its own
small vocabulary and sentence frames, different from data2text's templates and from the held-out query
wording. Answers are a pure function of the request, so caching and reruns can be checked.

It can also misbehave on purpose: queued failures (429 with Retry-After, 500, ...), a delay, a required
API key, or a custom `responder` that returns any text (empty, contradicting, overlong).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAND_IN_MODEL = "viml-stand-in (not a language model)"

# The stand-in's own words for some concept wordings; everything else is used as given.
LEXICON = {
    "sad": "downcast",
    "happy": "sunny",
    "mellow": "smooth",
    "chilled-out": "easygoing",
    "quiet": "hushed",
    "soft": "feather-light",
    "loud": "thunderous",
    "slow": "slow-moving",
    "fast": "racing",
    "beautiful": "graceful",
    "strange": "uncanny",
    "catchy": "earworm",
    "party-ready": "festive",
    "synthesizer": "synth",
    "drums": "a drum kit",
    "strings": "a string ensemble",
    "piano": "piano",
    "no vocals": "no voice",
    "female vocals": "a woman's voice",
    "male vocals": "a man's voice",
    "vocals": "a voice",
    "a choir": "a chorus",
    "a strong beat": "a hard-hitting rhythm",
}
MOODS = {
    "downcast",
    "sunny",
    "smooth",
    "easygoing",
    "hushed",
    "feather-light",
    "thunderous",
    "slow-moving",
    "racing",
    "graceful",
    "uncanny",
    "earworm",
    "festive",
    "sensual",
}
GENRES = {
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "dance",
    "jazz",
    "metal",
    "classic rock",
    "soul",
    "indie rock",
    "electronica",
    "folk",
    "punk",
    "blues",
    "hard rock",
    "ambient",
    "experimental",
    "hip-hop",
    "country",
    "easy-listening",
    "funk",
    "electro",
    "heavy metal",
    "progressive rock",
    "r&b",
    "indie pop",
    "house",
    "alternative rock",
    "techno",
    "classical",
    "indian",
    "opera",
    "new age",
}
FRAMES = (
    "{mood} {genre} cut with {lead} in the spotlight{voice}.",
    "Picture {genre} drenched in {mood} colour, {lead} at its heart{voice}.",
    "Through {lead}, this {mood} slice of {genre} unfolds{voice}.",
    "A {mood} {genre} offering, {lead} carrying it{voice}.",
    "{genre} with a {mood} streak, {lead} woven through{voice}.",
    "Imagine {lead} wrapped in {mood} {genre}{voice}.",
)


@dataclass
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"error": {"message": "stand-in failure"}}'


def stand_in_description(messages: list[dict]) -> str:
    """The stand-in 'model': a deterministic description of the prompt's last tag list."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    tag_lines = [line for line in prompt.splitlines() if line.startswith("Tags:")]
    tags = [t.strip() for t in tag_lines[-1][len("Tags:") :].split(",") if t.strip()] if tag_lines else []
    rng = random.Random(hashlib.sha256(prompt.encode()).hexdigest())
    words = [LEXICON.get(tag, tag) for tag in tags]
    moods = [w for w in words if w in MOODS] or ["understated"]
    voices = [w for w in words if "voice" in w or w == "a chorus"]
    genres = [w for w in words if w.lower() in GENRES]
    others = [w for w in words if w not in moods and w not in voices and w not in genres]
    genre = " and ".join(genres[:2]) or "music"
    lead = " and ".join(others[:2]) or "the arrangement"
    voice = (
        "" if not voices else (", with " + voices[0] if voices[0] != "no voice" else ", no voice anywhere")
    )
    text = rng.choice(FRAMES).format(mood=" ".join(moods[:2]), genre=genre, lead=lead, voice=voice)
    return text[0].upper() + text[1:]


class StandInLMServer:
    """`with StandInLMServer() as server: ChatClient(LLMConfig(server.url, server.model))`."""

    def __init__(
        self,
        responder: Callable[[list[dict]], str] = stand_in_description,
        failures: list[Failure] | None = None,
        delay_s: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.responder = responder
        self.failures = list(failures or [])  # served first, in order, one per request
        self.delay_s = delay_s
        self.api_key = api_key
        self.model = STAND_IN_MODEL
        self.requests: list[dict] = []  # every request body received, failures included
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> StandInLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only when it runs
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> StandInLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "invalid API key"}})
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    messages = body["messages"]
                except (ValueError, KeyError, TypeError):
                    return self._send(400, {"error": {"message": "body must be JSON with messages"}})
                with server._lock:
                    server.requests.append(body)
                    failure = server.failures.pop(0) if server.failures else None
                if server.delay_s:
                    time.sleep(server.delay_s)
                if failure is not None:
                    return self._send(failure.status, failure.body, failure.headers)
                content = server.responder(messages)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-"
                        + hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12],
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", server.model),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    },
                )

            def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, str) else json.dumps(payload)
                encoded = data.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                    self.wfile.write(encoded)

        return Handler
