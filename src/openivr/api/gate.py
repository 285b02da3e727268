"""What every request must be before a router sees it: JSON bodies of bounded size, text without
control characters in bodies, query strings and paths, integers within one bound.

One ASGI layer in front of the routers, so each rule is written once. The common request pays
for a header look-up and a regular-expression scan of its body; a body is parsed here only when
that scan finds something to refuse, so the error can name the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openivr.api.envelope import failure
from openivr.apps.validation import MAX_INT, control_character
from openivr.security import TokenError, TokenSigner

MAX_JSON_BYTES = 1024 * 1024
# Routes that take a body other than JSON: the token endpoint (form fields) and prompt messages
# (a multipart WAV upload); they check their own content types.
_FORM_PATHS = ("/oauth/token", "/SonetelAuth/oauth/token", "/SonetelAuth/beta/oauth/token")
_PUBLIC_PREFIXES = ("/oauth/", "/SonetelAuth/", "/healthz", "/globaldata/", "/audio/", "/docs")
_WITH_BODY = ("POST", "PUT", "PATCH", "DELETE")
# Anything in a raw JSON body that might be a control character, a lone surrogate or an integer
# beyond MAX_INT (16+ digits), escaped or not, in UTF-8 or UTF-16/32 (which hold NUL bytes).
_SUSPECT_BODY = re.compile(
    rb"\\u00[01789][0-9a-fA-F]|\\u[dD][89a-fA-F]|[\x00-\x08\x0b\x0c\x0e-\x1f]"
    rb"|\xc2[\x80-\x9f]|\xed[\xa0-\xbf]|\x7f|[0-9]{16}"
)
_SUSPECT_QUERY = re.compile(rb"%[01][0-9a-fA-F]|%7[fF]|%[cC]2%[89][0-9a-fA-F]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def token_refusal(tokens: TokenSigner, path: str, authorization: str) -> str | None:
    """Why a request to a protected path has no acceptable token (signature and expiry only)."""
    if path.startswith(_PUBLIC_PREFIXES):
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "an 'Authorization: Bearer <access token>' header is required"
    try:
        tokens.decode(token.strip(), "access")
    except TokenError as exc:
        return str(exc)
    return None


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON (`application/json;charset=UTF-8` included)."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every key and value of a JSON document with the dotted field name it sits at."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            yield name, key
            yield from _walk(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{i}]")
    else:
        yield where, value


def body_refusal(body: bytes) -> tuple[str, str] | None:
    """(field, reason) of the first string or integer of a JSON body that cannot be accepted."""
    if _SUSPECT_BODY.search(body) is None:
        return None
    try:
        document = json.loads(body)  # as the routers will: UTF-8, -16 or -32
    except ValueError:
        return None  # malformed: the routers answer malformed_json
    for field, value in _walk(document, ""):
        if isinstance(value, str):
            reason = control_character(value)
            if reason is not None:
                return field or "body", reason
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            return field or "body", f"must be between -{MAX_INT} and {MAX_INT}"
    return None


class RequestGate:
    """Refuses, before routing, what no route accepts: 413, 415 and 400 in the failed envelope.

    A caller without a valid token is told that first (401), as the routers do, so nothing is
    learnt about how a protected route would judge the request."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute], tokens: Callable[[], TokenSigner]):
        self.app = app
        self._routes = routes
        self._tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        refusal = self._path_refusal(scope) or self._query_refusal(scope)
        if refusal is not None:
            await self._refuse(scope, receive, send, "invalid_field", *refusal, 400)
            return
        if scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        length = headers.get(b"content-length", b"")
        has_body = b"transfer-encoding" in headers or (length.strip() not in (b"", b"0"))
        if not is_json(content_type):
            if has_body and path not in _FORM_PATHS and not path.endswith("/message"):
                detail = "send the body as JSON with 'Content-Type: application/json'"
                await self._refuse(scope, receive, send, "unsupported_media_type", "", detail, 415)
                return
            await self.app(scope, receive, send)
            return
        if length.isdigit() and int(length) > MAX_JSON_BYTES:
            await self._refuse(scope, receive, send, "too_large", "", _too_large(), 413)
            return
        body = await _read_body(receive, MAX_JSON_BYTES)
        if body is None:
            await self._refuse(scope, receive, send, "too_large", "", _too_large(), 413)
            return
        found = body_refusal(body)
        if found is not None:
            await self._refuse(scope, receive, send, "invalid_field", *found, 400)
            return
        await self.app(scope, _replay(body, receive), send)

    def _path_refusal(self, scope: Scope) -> tuple[str, str] | None:
        path: str = scope["path"]
        if _CONTROL.search(path) is None:
            return None
        reason = str(control_character(path, multiline=False))
        # Name the path parameter that holds it (routing again only for such a request).
        for route in self._routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                for name, value in child.get("path_params", {}).items():
                    if isinstance(value, str) and _CONTROL.search(value):
                        return name, str(control_character(value, multiline=False))
        return "path", reason

    @staticmethod
    def _query_refusal(scope: Scope) -> tuple[str, str] | None:
        raw: bytes = scope.get("query_string", b"")
        if _SUSPECT_QUERY.search(raw) is None:
            return None
        for name, value in parse_qsl(
            raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"
        ):
            for text in (name, value):
                reason = control_character(text, multiline=False)
                if reason is not None:
                    return name, reason
        return None

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        code: str,
        field: str,
        detail: str,
        status: int,
    ) -> None:
        path: str = scope["path"]
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        refusal = token_refusal(self._tokens(), path, authorization)
        if refusal is not None:
            code, detail, status = "unauthorized", refusal, 401
        elif field:
            detail = f"{field}: {detail}"
        await failure(path, code, detail, status)(scope, receive, send)


def _too_large() -> str:
    return f"body: a JSON body may be at most {MAX_JSON_BYTES // 1024} kB"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the route will see an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the body already read, then whatever the client sends."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
