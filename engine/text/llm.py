"""A small client for any server with the OpenAI-compatible chat/completions HTTP API.

llama.cpp's server, vLLM, Ollama and hosted services all speak it. What the client adds for bulk
synthesis: every answer is cached on disk keyed by the request (model + messages + sampling), so a
rerun costs nothing; requests are paced to a rate limit; 429, 5xx, timeouts and dropped connections
are retried with exponential backoff that honours the server's Retry-After.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from viml.errors import UserFacingError
from viml.paths import cache_dir

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
Message = dict[str, str]


class LLMNotConfiguredError(UserFacingError):
    """No language model server was given."""

    def __init__(self) -> None:
        super().__init__(
            "no language model server configured: set VIML_LLM_URL (an OpenAI-compatible base URL such as "
            "http://localhost:8080/v1 for llama.cpp or http://localhost:11434/v1 for Ollama) and "
            "VIML_LLM_MODEL (and VIML_LLM_API_KEY for hosted services), or pass --llm-url/--llm-model"
        )


class LLMRequestError(UserFacingError):
    """The server refused, kept failing after the retries, or answered something unreadable."""


@dataclass(frozen=True)
class LLMConfig:
    url: str  # base URL ("http://host:8080/v1") or the full ".../chat/completions" endpoint
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0  # first wait; doubles per retry
    max_backoff_s: float = 60.0
    requests_per_minute: float | None = None  # None: no pacing
    temperature: float = 0.7
    max_tokens: int = 120

    @classmethod
    def from_env(
        cls, url: str | None = None, model: str | None = None, api_key: str | None = None, **kwargs
    ) -> LLMConfig:
        """Arguments win over VIML_LLM_URL / VIML_LLM_MODEL / VIML_LLM_API_KEY, which win over the
        settings file's llm_url / llm_model / llm_api_key."""
        from viml.settings import load_settings

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
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._http = httpx.Client(timeout=config.timeout_s, headers=headers, transport=transport)
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
        text = parse_completion(self._post(body))
        self._write_cache(key, body, text)
        return text

    def _post(self, body: dict) -> dict:
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            self._pace()
            self.requests_sent += 1
            wait = None
            try:
                response = self._http.post(self.config.endpoint, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as error:
                        raise LLMRequestError(
                            f"{self.config.endpoint} answered invalid JSON: {error}"
                        ) from None
                problem = f"HTTP {response.status_code}: {_error_message(response)}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise LLMRequestError(f"{self.config.endpoint} refused the request ({problem})")
                wait = _retry_after(response)
            if attempt + 1 == attempts:
                raise LLMRequestError(f"{self.config.endpoint} failed {attempts} times; last: {problem}")
            wait = min(
                self.config.max_backoff_s, wait if wait is not None else self.config.backoff_s * 2**attempt
            )
            log.warning("language model request failed (%s); retry %d in %.1f s", problem, attempt + 1, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")

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
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, OSError):  # a damaged entry is refetched, never trusted
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
            f"the server's answer has no choices[0].message.content: {str(payload)[:200]}"
        ) from None
    if not isinstance(text, str):
        raise LLMRequestError("the server's answer content is not text")
    return text


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason_phrase
