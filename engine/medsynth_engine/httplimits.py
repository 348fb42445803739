"""Size limits on what a client may send the engine: the request body and the URL path.

A job request is a few hundred bytes of JSON; a body over ``MAX_BODY_BYTES`` (declared, or counted while it streams
in) is refused with 413 before it is parsed, and a path over ``MAX_PATH_CHARS`` with 414, each as the API's one
sentence. Paths inside job parameters have their own limit (4096 characters, ``jobs/schema.PathText``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["MAX_BODY_BYTES", "MAX_PATH_CHARS", "RequestLimits"]

MAX_BODY_BYTES = 1 << 20
MAX_PATH_CHARS = 2048

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class RequestLimits:
    """ASGI middleware: 413 for a body over ``max_body`` bytes, 414 for a URL path over ``max_path`` characters."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_body: int = MAX_BODY_BYTES,
                 max_path: int = MAX_PATH_CHARS) -> None:
        self.app, self.max_body, self.max_path = app, max_body, max_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("raw_path") or scope.get("path", "").encode()
        if len(path) > self.max_path:
            await _refuse(send, 414, f"The request's path is longer than {self.max_path} characters.")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _refuse(send, 413, f"The request body is larger than {self.max_body // 1024} KiB; a job request is a few hundred bytes.")
            return
        chunks: list[bytes] = []  # read whole before the app sees it: a job request is small, a larger one never parsed
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_body:
                await _refuse(send, 413, f"The request body is larger than {self.max_body // 1024} KiB; a job request is a few hundred bytes.")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, sentence: str) -> None:
    body = json.dumps({"error": sentence}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
