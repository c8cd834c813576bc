"""The language model client against hostile servers: real sockets on 127.0.0.1, bounded server loops.

Each behaviour must end in an LLMRequestError, in bounded time and memory, with nothing cached.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable

import pytest
from viml.demo.standin import StandInLMServer
from viml.engine.text.llm import ChatClient, LLMConfig, LLMConfigError, LLMRequestError

MESSAGES = [{"role": "user", "content": "Tags: piano, slow\nDescription:"}]
LIMIT = 256 * 1024  # max_response_bytes in these tests
SERVER_CAP = 64 * 1024 * 1024  # what an "endless" server sends at most (an unbounded client takes it all)
BLOCK = b"a" * 65536
PREFIX = b'{"choices": [{"message": {"role": "assistant", "content": "'
SUFFIX = b'"}}]}'
HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


class HostileServer:
    """Reads each request like an HTTP server, then hands the socket to `behave`."""

    def __init__(self, behave: Callable[[socket.socket, threading.Event], None]) -> None:
        self.requests = 0
        self.stopped = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = sock.recv(4096)
                    if not data:
                        return
                    head += data
                header_block, _, rest = head.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in header_block.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                while len(rest) < length:
                    data = sock.recv(65536)
                    if not data:
                        return
                    rest += data
                server.requests += 1
                with contextlib.suppress(OSError):  # the client hung up: what a hostile server gets
                    behave(sock, server.stopped)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def endless_body(sock: socket.socket, stopped: threading.Event) -> None:
    """A valid answer whose content never ends (chunked, up to SERVER_CAP, then properly closed)."""
    sock.sendall(HEAD_200 + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(PREFIX), PREFIX))
    frame = b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK)
    for _ in range(SERVER_CAP // len(BLOCK)):
        if stopped.is_set():
            return
        sock.sendall(frame)
    sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(SUFFIX), SUFFIX))


def huge_declared_body(sock: socket.socket, stopped: threading.Event) -> None:
    """A 300 MB answer announced by Content-Length (sent up to SERVER_CAP)."""
    sock.sendall(HEAD_200 + b"Content-Length: 300000000\r\n\r\n" + PREFIX)
    for _ in range(SERVER_CAP // len(BLOCK)):
        if stopped.is_set():
            return
        sock.sendall(BLOCK)


def gzip_bomb(sock: socket.socket, stopped: threading.Event) -> None:
    """64 MiB of valid answer in about 64 KB of gzip, sent although the client asked for identity."""
    sock.sendall(HEAD_200 + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(BOMB) + BOMB)


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(PREFIX)]
    parts += [packer.compress(BLOCK * 16) for _ in range(SERVER_CAP // len(BLOCK) // 16)]
    return b"".join([*parts, packer.compress(SUFFIX), packer.flush()])


BOMB = _bomb()


def endless_error(sock: socket.socket, stopped: threading.Event) -> None:
    """A retryable refusal whose message never ends."""
    sock.sendall(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n")
    frame = b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK)
    for _ in range(SERVER_CAP // len(BLOCK)):
        if stopped.is_set():
            return
        sock.sendall(frame)
    sock.sendall(b"0\r\n\r\n")


def trickle(payload: bytes, head: bytes = b"") -> Callable[[socket.socket, threading.Event], None]:
    """Sends `head`, then `payload` one byte every 0.25 s (each read returns: no read timeout fires)."""

    def behave(sock: socket.socket, stopped: threading.Event) -> None:
        sock.sendall(head)
        for byte in payload[:80]:  # at most 20 s
            if stopped.wait(0.25):
                return
            sock.sendall(bytes([byte]))

    return behave


def answer(body: bytes, head: bytes = HEAD_200) -> Callable[[socket.socket, threading.Event], None]:
    def behave(sock: socket.socket, stopped: threading.Event) -> None:
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    return behave


def silent(sock: socket.socket, stopped: threading.Event) -> None:
    """Accepts the request and never answers (until the test ends)."""
    stopped.wait(20)


VALID = PREFIX + b"A quiet piano piece." + SUFFIX


def run_hostile(behave, tmp_path, measure: bool = False, **config) -> tuple[LLMRequestError, float, int]:
    """The error, the seconds it took and (when measured) the peak bytes allocated meanwhile."""
    config = {"max_retries": 0, "backoff_s": 0.0, "max_response_bytes": LIMIT, **config}
    with (
        HostileServer(behave) as server,
        ChatClient(LLMConfig(server.url, "m", **config), tmp_path) as client,
    ):
        if measure:
            tracemalloc.start()
        start = time.monotonic()
        try:
            with pytest.raises(LLMRequestError) as caught:
                client.complete(MESSAGES)
            elapsed = time.monotonic() - start
            peak = tracemalloc.get_traced_memory()[1] if measure else 0
        finally:
            tracemalloc.stop()
    assert not list(tmp_path.rglob("*.json")), "a failed answer was cached"
    message = str(caught.value)
    assert message and "\n" not in message and len(message) < 400
    return caught.value, elapsed, peak


@pytest.mark.parametrize(
    "behave, match",
    [
        (endless_body, "over the limit of 262144 bytes"),
        (huge_declared_body, "300000000 bytes, over the limit"),
        (gzip_bomb, "Content-Encoding 'gzip'"),
    ],
    ids=["endless-body", "huge-declared-body", "gzip-bomb"],
)
def test_oversized_answers_stop_at_the_byte_limit(tmp_path, behave, match):
    error, elapsed, peak = run_hostile(behave, tmp_path, measure=True)
    assert match in str(error)
    assert elapsed < 3
    assert (
        peak < LIMIT + 1024 * 1024
    )  # an unbounded client takes 64 MiB; this one keeps LIMIT (+ h11, sockets)


def test_an_endless_refusal_is_read_only_for_its_message(tmp_path):
    error, elapsed, peak = run_hostile(endless_error, tmp_path, measure=True, max_retries=1)
    assert "failed 2 times; last: HTTP 503: aaaa" in str(error)
    assert elapsed < 3 and peak < LIMIT + 1024 * 1024


def test_an_over_long_answer_is_refused_and_never_cached(tmp_path):
    body = PREFIX + b"la " * 20_000 + SUFFIX  # 60 kB: under the byte limit, far over max_tokens
    error, _, _ = run_hostile(answer(body), tmp_path, max_tokens=120)
    assert "answered 60000 characters, over the limit of 1920 (max_answer_chars)" in str(error)


@pytest.mark.parametrize(
    "behave",
    [
        trickle(HEAD_200 + b"Content-Length: %d\r\n\r\n" % len(VALID) + VALID),
        trickle(VALID, head=HEAD_200 + b"Content-Length: %d\r\n\r\n" % len(VALID)),
        silent,
    ],
    ids=["trickled-headers", "trickled-body", "silent"],
)
def test_a_slow_server_fails_at_the_deadline(tmp_path, behave):
    error, elapsed, _ = run_hostile(behave, tmp_path, timeout_s=30.0, deadline_s=1.0)
    assert "no complete answer within 1 s" in str(error)
    assert 0.9 < elapsed < 2.5  # the deadline, not the 30 s per-read timeout, nor the 20 s of trickle


def test_retries_share_an_overall_limit(tmp_path):
    start = time.monotonic()
    with HostileServer(silent) as server:
        config = LLMConfig(server.url, "m", max_retries=100, backoff_s=0.1, deadline_s=0.4,
                           total_deadline_s=1.0, timeout_s=30.0)  # fmt: skip
        with ChatClient(config, tmp_path) as client, pytest.raises(LLMRequestError) as caught:
            client.complete(MESSAGES)
    assert "within the overall limit of 1 s (total_deadline_s)" in str(caught.value)
    assert time.monotonic() - start < 2.0 and server.requests == 2


@pytest.mark.parametrize(
    "body, match",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"choices": ' + b'{"a": ' * 30_000 + b"1" + b"}" * 30_001, "nested too deeply"),
        (bytes(range(128, 256)) * 64, "not UTF-8"),
        (b"\x00\x01garbage\r\n\r\nmore", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"null", "no choices"),
        (b"[]", "no choices"),
        (b'{"choices": "text"}', "no choices"),
        (b'{"choices": [{"message": "text"}]}', "no choices"),
        (b'{"choices": [{"message": {"content": null}}]}', "not text"),
        (b'{"choices": [{"message": {"content": ["a", "b"]}}]}', "not text"),
        (b'{"choices": [' + b"[" * 800 + b"]" * 800 + b"]}", "no choices"),
    ],
    ids=[
        "deep-list",
        "deep-object",
        "non-utf8",
        "garbage",
        "empty",
        "null",
        "list",
        "choices-str",
        "message-str",
        "content-null",
        "content-list",
        "deep-choice",
    ],
)
def test_unreadable_answers_are_one_line_client_errors(tmp_path, body, match):
    error, elapsed, _ = run_hostile(answer(body), tmp_path)
    assert match in str(error) and elapsed < 3


def test_a_stale_over_long_cache_entry_is_refetched(tmp_path):
    with StandInLMServer() as server, ChatClient(LLMConfig(server.url, server.model), tmp_path) as client:
        key = client.cache_key(client.request_body(MESSAGES))
        entry = tmp_path / key[:2] / f"{key}.json"
        entry.parent.mkdir(parents=True)
        entry.write_text(json.dumps({"request": {}, "response": "la " * 10_000}))  # an old client's
        assert len(client.complete(MESSAGES)) < 200
        assert client.requests_sent == 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("timeout_s", 0),
        ("timeout_s", -1.0),
        ("timeout_s", float("nan")),
        ("deadline_s", float("inf")),
        ("total_deadline_s", 0.0),
        ("max_response_bytes", 0),
        ("max_response_bytes", 1.5),
        ("max_answer_chars", 0),
        ("max_tokens", 0),
        ("max_retries", -1),
        ("backoff_s", -0.5),
        ("requests_per_minute", 0),
        ("timeout_s", "60"),
    ],
)
def test_settings_out_of_range_are_refused(field, value):
    with pytest.raises(LLMConfigError, match=f"{field} must be"):
        LLMConfig("http://127.0.0.1:1/v1", "m", **{field: value})
