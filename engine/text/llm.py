"""A small client for any server with the OpenAI-compatible chat/completions HTTP API.

llama.cpp's server, vLLM, Ollama and hosted services all speak it. What the client adds for bulk
synthesis: every answer is cached on disk keyed by the request (model + messages + sampling), so a
rerun costs nothing; requests are paced to a rate limit; 429, 5xx, timeouts and dropped connections
are retried with exponential backoff that honours the server's Retry-After.

Nothing a server sends can make the client hang, exhaust memory or crash: the answer is streamed
into a buffer of at most `max_response_bytes`, every attempt has a wall-clock deadline (connect,
send and all reads together, however slowly the bytes trickle in), the retries share an overall
limit, the answer text is bounded, and every unreadable answer is an LLMRequestError.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import math
import os
import reprlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx
from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
ERROR_BODY_BYTES = 64 * 1024  # what is read of a refusal's body, for its message
CHARS_PER_TOKEN = 16  # the default answer limit: generous for any tokenizer
Message = dict[str, str]


class LLMNotConfiguredError(UserFacingError):
    """No language model server was given."""

    def __init__(self) -> None:
        super().__init__(
            "no language model server configured: set VIML_LLM_URL (an OpenAI-compatible base URL such as "
            "http://localhost:8080/v1 for llama.cpp or http://localhost:11434/v1 for Ollama) and "
            "VIML_LLM_MODEL (and VIML_LLM_API_KEY for hosted services), or pass --llm-url/--llm-model"
        )


class LLMConfigError(UserFacingError, ValueError):
    """A client setting is out of range (a timeout or limit that is not a positive number)."""


class LLMRequestError(UserFacingError):
    """The server refused, kept failing after the retries, or answered something unreadable."""


@dataclass(frozen=True)
class LLMConfig:
    url: str  # base URL ("http://host:8080/v1") or the full ".../chat/completions" endpoint
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0  # the longest wait for any one network operation (connect, a read)
    deadline_s: float = 180.0  # wall clock for one attempt: connect + send + every read
    total_deadline_s: float = 900.0  # wall clock for one request: all attempts and the waits between
    max_retries: int = 5
    backoff_s: float = 1.0  # first wait; doubles per retry
    max_backoff_s: float = 60.0
    requests_per_minute: float | None = None  # None: no pacing
    temperature: float = 0.7
    max_tokens: int = 120
    max_response_bytes: int = 1024 * 1024  # a larger answer is refused before more is read
    max_answer_chars: int | None = None  # None: CHARS_PER_TOKEN * max_tokens

    def __post_init__(self) -> None:
        checks: list[tuple[str, object, bool, bool]] = [  # name, value, integer, zero allowed
            ("timeout_s", self.timeout_s, False, False),
            ("deadline_s", self.deadline_s, False, False),
            ("total_deadline_s", self.total_deadline_s, False, False),
            ("max_retries", self.max_retries, True, True),
            ("backoff_s", self.backoff_s, False, True),
            ("max_backoff_s", self.max_backoff_s, False, True),
            ("max_tokens", self.max_tokens, True, False),
            ("max_response_bytes", self.max_response_bytes, True, False),
            ("temperature", self.temperature, False, True),
        ]
        if self.requests_per_minute is not None:
            checks.append(("requests_per_minute", self.requests_per_minute, False, False))
        if self.max_answer_chars is not None:
            checks.append(("max_answer_chars", self.max_answer_chars, True, False))
        for name, value, integer, zero in checks:
            kind = int if integer else (int, float)
            valid = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
            if not valid or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
                what = "an integer" if integer else "a number"
                raise LLMConfigError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")

    @classmethod
    def from_env(
        cls, url: str | None = None, model: str | None = None, api_key: str | None = None, **kwargs
    ) -> LLMConfig:
        """Arguments win over VIML_LLM_URL / VIML_LLM_MODEL / VIML_LLM_API_KEY, which win over the
        settings file's llm_url / llm_model / llm_api_key."""
        from viml.core.settings import load_settings

        settings = load_settings()
        url = url or os.environ.get("VIML_LLM_URL") or settings.get("llm_url")
        model = model or os.environ.get("VIML_LLM_MODEL") or settings.get("llm_model")
        api_key = api_key or os.environ.get("VIML_LLM_API_KEY") or settings.get("llm_api_key") or None
        if not url or not model:
            raise LLMNotConfiguredError()
        return cls(
            url=url, model=model, api_key=api_key, **{k: v for k, v in kwargs.items() if v is not None}
        )

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    @property
    def answer_limit(self) -> int:
        """The most characters an answer may have."""
        limit = self.max_answer_chars
        return limit if limit is not None else CHARS_PER_TOKEN * self.max_tokens


class ChatClient:
    """Sends chat requests; one instance may be shared by threads (pacing and cache are thread-safe)."""

    def __init__(
        self,
        config: LLMConfig,
        cache_path: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.cache_path = Path(cache_path) if cache_path is not None else cache_dir() / "llm"
        self.cache_path.mkdir(parents=True, exist_ok=True)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._deadline = threading.local()  # this thread's attempt deadline (time.monotonic), if any
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._http = httpx.Client(timeout=config.timeout_s, headers=headers, transport=transport)
        _clamp_socket_timeouts(self._http, config.endpoint, self._time_left)
        self.requests_sent = 0  # network requests, retries included (cache hits send none)
        self.cache_hits = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_body(self, messages: list[Message], temperature: float | None = None) -> dict:
        return {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature if temperature is None else temperature,
            "max_tokens": self.config.max_tokens,
        }

    def cache_key(self, body: dict) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def complete(self, messages: list[Message], temperature: float | None = None) -> str:
        """The assistant's text for these messages, from the cache or the server."""
        body = self.request_body(messages, temperature)
        key = self.cache_key(body)
        cached = self._read_cache(key)
        if cached is not None:
            self.cache_hits += 1
            return cached
        text = parse_completion(_load_json(self._post(body), self.config.endpoint))
        if len(text) > self.config.answer_limit:
            raise LLMRequestError(
                f"{self.config.endpoint} answered {len(text)} characters, over the limit of "
                f"{self.config.answer_limit} (max_answer_chars)"
            )
        self._write_cache(key, body, text)
        return text

    def _post(self, body: dict) -> bytearray:
        """The body of the server's 200 answer, within the retries, deadlines and size limit."""
        config, endpoint = self.config, self.config.endpoint
        attempts = config.max_retries + 1
        give_up_at = math.inf
        for attempt in range(attempts):
            self._pace()
            now = time.monotonic()
            give_up_at = min(give_up_at, now + config.total_deadline_s)
            deadline = min(now + config.deadline_s, give_up_at)
            self.requests_sent += 1
            wait = None
            try:
                status, data, headers = self._attempt(body, deadline)
            except httpx.TransportError as error:  # timeouts, refused and dropped connections
                problem = _one_line(f"{type(error).__name__}: {error}")
                if time.monotonic() >= deadline - 1e-3:
                    problem = f"no complete answer within {deadline - now:.3g} s ({problem})"
            except httpx.HTTPError as error:
                raise LLMRequestError(_one_line(f"{endpoint}: {type(error).__name__}: {error}")) from None
            else:
                if status == 200:
                    return data
                problem = f"HTTP {status}: {_error_message(data)}"
                if status not in RETRYABLE_STATUS:
                    raise LLMRequestError(f"{endpoint} refused the request ({problem})")
                wait = _retry_after(headers)
            if attempt + 1 == attempts:
                raise LLMRequestError(f"{endpoint} failed {attempts} times; last: {problem}")
            wait = min(config.max_backoff_s, wait if wait is not None else config.backoff_s * 2**attempt)
            if time.monotonic() + wait >= give_up_at:
                raise LLMRequestError(
                    f"{endpoint} failed {attempt + 1} times within the overall limit of "
                    f"{config.total_deadline_s:g} s (total_deadline_s); last: {problem}"
                )
            log.warning("language model request failed (%s); retry %d in %.1f s", problem, attempt + 1, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(self, body: dict, deadline: float) -> tuple[int, bytearray, httpx.Headers]:
        """One request, streamed: (status, body, headers). A 200 body over the limit is an error; of
        any other status only the first ERROR_BODY_BYTES are kept, for the message."""
        self._deadline.at = deadline
        try:
            timeout = max(1e-3, min(self.config.timeout_s, deadline - time.monotonic()))
            with self._http.stream("POST", self.config.endpoint, json=body, timeout=timeout) as response:
                ok = response.status_code == 200
                limit = self.config.max_response_bytes if ok else ERROR_BODY_BYTES
                if ok:
                    self._check_headers(response.headers)
                data = bytearray()
                for chunk in response.iter_raw():
                    if len(data) + len(chunk) > limit:
                        if ok:
                            raise self._too_large()
                        data += chunk[: limit - len(data)]
                        break
                    data += chunk
                    if time.monotonic() > deadline:  # also where no socket timeout could be clamped
                        raise httpx.ReadTimeout("the attempt's deadline passed")
                return response.status_code, data, response.headers
        finally:
            self._deadline.at = None

    def _check_headers(self, headers: httpx.Headers) -> None:
        encoding = headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):  # decompression could outgrow any limit: never done
            raise LLMRequestError(
                _one_line(f"{self.config.endpoint} answered with Content-Encoding {encoding!r}; "
                          "the client asks for identity")
            )  # fmt: skip
        length = headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > self.config.max_response_bytes:
            raise self._too_large(int(length))

    def _too_large(self, size: int | None = None) -> LLMRequestError:
        limit = self.config.max_response_bytes
        return LLMRequestError(
            f"{self.config.endpoint} answered {f'{size} bytes' if size else 'more'}, over the limit "
            f"of {limit} bytes (max_response_bytes)"
        )

    def _time_left(self) -> float | None:
        at = getattr(self._deadline, "at", None)
        return None if at is None else at - time.monotonic()

    def _pace(self) -> None:
        """Keep at most `requests_per_minute` requests per minute, shared across threads."""
        if not self.config.requests_per_minute:
            return
        interval = 60.0 / self.config.requests_per_minute
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_slot)
            self._next_slot = start + interval
        if start > now:
            self._sleep(start - now)

    def _cache_file(self, key: str) -> Path:
        return self.cache_path / key[:2] / f"{key}.json"

    def _read_cache(self, key: str) -> str | None:
        path = self._cache_file(key)
        try:
            if path.stat().st_size > 2 * self.config.max_response_bytes:
                raise ValueError("too large")
            text = json.loads(path.read_text(encoding="utf-8"))["response"]
            if not isinstance(text, str) or len(text) > self.config.answer_limit:
                raise ValueError("not an answer within the limits")
            return text
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, OSError, RecursionError):  # refetched, never trusted
            log.warning("ignoring unreadable cache entry %s", path)
            return None

    def _write_cache(self, key: str, body: dict, text: str) -> None:
        path = self._cache_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(
            json.dumps({"request": body, "response": text}, ensure_ascii=False), encoding="utf-8"
        )
        os.replace(temporary, path)  # atomic: a crash never leaves half an entry


def parse_completion(payload: object) -> str:
    """The text of the first choice of a chat (or plain completion) response."""
    try:
        choice = payload["choices"][0]  # type: ignore[index]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        raise LLMRequestError(
            _one_line(f"the server's answer has no choices[0].message.content: {reprlib.repr(payload)}")
        ) from None
    if not isinstance(text, str):
        raise LLMRequestError("the server's answer content is not text")
    return text


def _load_json(data: bytes | bytearray, endpoint: str) -> object:
    """The JSON value of a body; anything unreadable is an LLMRequestError with a one-line message."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise LLMRequestError(
            f"{endpoint} answered bytes that are not UTF-8 (at byte {error.start})"
        ) from None
    except RecursionError:
        raise LLMRequestError(f"{endpoint} answered JSON nested too deeply to read") from None
    except ValueError as error:
        raise LLMRequestError(_one_line(f"{endpoint} answered invalid JSON: {error}")) from None


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), if any."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(data: bytes | bytearray) -> str:
    text = data.decode("utf-8", errors="replace")
    try:
        error = json.loads(text).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return _one_line(str(message))
    except (ValueError, AttributeError, RecursionError):
        pass
    return _one_line(text) or "no message"


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation waits no longer than what is left of the attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, clamp: Callable[[float | None], float | None]):
        self._inner, self._clamp = inner, clamp

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._clamp(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, self._clamp(timeout))
        return _DeadlineStream(tls, self._clamp)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, time_left: Callable[[], float | None]) -> None:
        self._inner, self._time_left = inner, time_left

    def _clamp(self, timeout: float | None) -> float | None:
        left = self._time_left()
        if left is None:
            return timeout
        left = max(left, 1e-3)  # a passed deadline times out at once, as a timeout
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, self._clamp(timeout), local_address, socket_options)
        return _DeadlineStream(stream, self._clamp)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, self._clamp(timeout), socket_options)
        return _DeadlineStream(stream, self._clamp)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _clamp_socket_timeouts(client: httpx.Client, url: str, time_left: Callable[[], float | None]) -> None:
    """Make the socket operations of the transport that serves `url` respect the attempt deadline, so
    that a server trickling its headers or body a byte at a time times out at the deadline. httpx has
    no public hook for this: where its transport is not the usual httpcore pool (a test's mock), the
    deadline is still checked after every chunk of the body."""
    try:
        pool = client._transport_for_url(httpx.URL(url))._pool  # type: ignore[attr-defined]
        backend = pool._network_backend
    except (AttributeError, httpx.InvalidURL):
        return
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend, time_left)
