"""A client of `viml serve` in the standard library only: the editor add-ons (Blender, Resolve) ship it.

It runs in the editor's own Python (Blender's, Resolve's), where ViML is not importable, so it repeats
two small rules of ViML's: where ViML keeps its data (`VIML_HOME`, else platformdirs' user data folder
for "viml") and the service's files there (`service/token`, `service/endpoint.json`, written by
`viml serve`). `VIML_SERVICE_URL` and `VIML_SERVICE_DIR` override both.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8765"
TIMEOUT = 150.0  # seconds; the service's own time-out is 120 s by default


class ServiceError(Exception):
    """The service answered with an error (`status` 0: it could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def data_dir() -> Path:
    """ViML's data folder, as viml.core.paths.viml_home() finds it."""
    if os.environ.get("VIML_HOME"):
        return Path(os.environ["VIML_HOME"])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "viml"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "viml"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "viml"


def service_dir() -> Path:
    return Path(os.environ.get("VIML_SERVICE_DIR") or data_dir() / "service")


class Service:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = TIMEOUT) -> None:
        folder = service_dir()
        self.url = (url or os.environ.get("VIML_SERVICE_URL") or _endpoint(folder) or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else _token(folder)
        self.timeout = timeout

    # -- the API ------------------------------------------------------------------------------------

    def status(self) -> dict:
        return self._json("GET", "/v1/status")

    def suggest(self, **fields) -> dict:
        """fields: video, start, end, prompt, influence, top, filters={...}, ... (the service's SuggestIn)."""
        return self._json("POST", "/v1/suggest", {k: v for k, v in fields.items() if v is not None})

    def suggest_upload(self, file: str | os.PathLike, **fields) -> dict:
        boundary = uuid.uuid4().hex
        data = Path(file).read_bytes()
        request = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
        body = b"".join([
            f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n'.encode(), request,
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{Path(file).name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode(),
            data, f"\r\n--{boundary}--\r\n".encode(),
        ])  # fmt: skip
        _, _, answer = self._send(
            "POST", "/v1/suggest/upload", body, f"multipart/form-data; boundary={boundary}"
        )
        return json.loads(answer)

    def similar(self, track: str, **fields) -> dict:
        return self._json("POST", "/v1/similar", {"track": track, **fields})

    def mark(self, track: str, **fields) -> dict:
        """Record a placed suggestion as used in this edit; fields: offset, video, start, end (the clip,
        in the video's own seconds), project, origin (the service's MarkIn). Returns the mark."""
        return self._json(
            "POST", "/v1/marks", {"track": track, **{k: v for k, v in fields.items() if v is not None}}
        )

    def excerpt(
        self, path: str, start: float, duration: float, output: str | os.PathLike, mode: str = "auto",
        target_lufs: float | None = -16.0,
    ) -> tuple[Path, str, str]:  # fmt: skip
        """Render the part to `output` (a WAV); returns (output, kind fitted|plain, what was done)."""
        body = {"path": path, "start": start, "duration": duration, "mode": mode, "target_lufs": target_lufs}
        _, headers, data = self._send("POST", "/v1/excerpt", json.dumps(body).encode(), "application/json")
        return (
            _write(output, data),
            headers.get("x-viml-excerpt-kind", ""),
            headers.get("x-viml-excerpt-note", ""),
        )

    def preview(
        self, path: str, output: str | os.PathLike, start: float = 0.0, duration: float = 30.0
    ) -> Path:
        query = urllib.parse.urlencode({"path": path, "start": start, "duration": duration})
        _, _, data = self._send("GET", f"/v1/preview?{query}")
        return _write(output, data)

    # -- plumbing -----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        _, _, answer = self._send(method, path, data, "application/json" if data is not None else None)
        return json.loads(answer)

    def _send(
        self, method: str, path: str, data: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, dict, bytes]:
        if not self.token:
            raise ServiceError(0, f"no ViML service token in {service_dir()}: start `viml serve` once")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            raise ServiceError(error.code, _message(error.read()) or str(error)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServiceError(
                0, f"the ViML service at {self.url} is not running ({reason}): start `viml serve`"
            ) from None


def _endpoint(folder: Path) -> str | None:
    try:
        return json.loads((folder / "endpoint.json").read_text(encoding="utf-8"))["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _token(folder: Path) -> str:
    try:
        return (folder / "token").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")[:300]


def _write(output: str | os.PathLike, data: bytes) -> Path:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return path
