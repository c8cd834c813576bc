"""The service's door, as one ASGI middleware in front of every route (the schema and 404s included).

In order: the Host must name this machine's loopback (a DNS-rebinding page reaches 127.0.0.1 under
its own host name); a request carrying a browser `Origin` other than the service's own is refused
(no CORS: a web page gets no answer, not even to a pre-flight); the token must be sent as
`Authorization: Bearer TOKEN` (compared in constant time); the body may not exceed the route's limit,
checked on Content-Length before anything is read and counted while it streams (chunked uploads).
"""

from __future__ import annotations

import hmac

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this endpoint takes ({limit} bytes)")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Guard:
    def __init__(
        self, app: ASGIApp, token: str, max_body: int, max_upload: int, upload_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = self.max_upload if scope["path"] in self.upload_paths else self.max_body
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await error_response(413, BodyTooLargeError(limit).detail)(scope, receive, send)
            return
        received = 0
        started = tripped = False

        async def counted() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise BodyTooLargeError(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if tripped:  # whatever the app made of the interrupted body (a parser's 400), it was too large
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await error_response(413, BodyTooLargeError(limit).detail)(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError as error:
            if started:
                raise
            await error_response(413, error.detail)(scope, receive, send)

    def refusal(self, scope: Scope) -> JSONResponse | None:
        host = (_header(scope, b"host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in LOOPBACK_HOSTS:
            return error_response(
                403, f"this service answers only on 127.0.0.1, not as {host or '(no host)'}"
            )
        origin = _header(scope, b"origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return error_response(403, "cross-origin requests are refused: the service is for local programs")
        sent = (_header(scope, b"authorization") or "").encode()
        if not hmac.compare_digest(sent, self.expected):
            message = "a valid token is required" if sent else "missing token"
            return error_response(
                401,
                f"{message}: send `Authorization: Bearer TOKEN` with the token from `viml serve --print-token`",
                {"WWW-Authenticate": "Bearer"},
            )
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
