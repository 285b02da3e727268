"""The ASGI application: routers, the envelope on every error, slash-tolerant paths."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from openivr import __version__, console
from openivr.api import (
    accounts,
    auth,
    callbacks,
    calls,
    flows,
    globaldata,
    monitoring,
    phonenumbers,
    prompts,
    recordings,
    schedules,
    securityevents,
    teams,
    tts,
    users,
    voiceapps,
)
from openivr.api.docs import install_docs
from openivr.api.envelope import failure
from openivr.api.errors import status_of
from openivr.api.gate import RequestGate, token_refusal
from openivr.api.viewcache import ViewCache
from openivr.apps.validation import FieldError, Refusal
from openivr.context import ServerContext
from openivr.loopwatch import RequestActivity
from openivr.metrics import RequestMetrics
from openivr.settings import Settings
from openivr.store.db import make_engine, make_sessionmaker, migrate

log = logging.getLogger(__name__)
_SLASHES = re.compile(r"/{2,}")

# The resources, in routing order.
ROUTED = (
    auth,
    accounts,
    users,
    voiceapps,
    flows,
    prompts,
    phonenumbers,
    teams,
    schedules,
    tts,
    calls,
    callbacks,
    recordings,
    securityevents,
    globaldata,
)

# Extra routers and start-up hooks added by later layers (TTS, simulator, SIP, delivery).
NodeLayer = Callable[[FastAPI, ServerContext, AsyncExitStack], Awaitable[None]]


class SlashTolerance:
    """Clients send //account//123 and /voiceapp/: route them as /account/123 and /voiceapp."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            fixed = _SLASHES.sub("/", path)
            if len(fixed) > 1:
                fixed = fixed.rstrip("/") or "/"
            if fixed != path:
                scope = dict(scope, path=fixed, raw_path=fixed.encode())
        await self.app(scope, receive, send)


# Parts of a pydantic error location that name a member of a union type, not a field.
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*|dict\[.*|function-.*|[A-Z]\w*)$")


def _validation_detail(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if not errors:
        return "invalid_field", "the request is not valid"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "malformed_json", "the body is not valid JSON"
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    if unknown:
        names = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in unknown)
        return "invalid_field", f"{names}: unknown field{'s' if len(unknown) > 1 else ''}"
    loc = [
        str(p)
        for p in first.get("loc", ())
        if p not in ("body", "query", "path", "header") and not _TYPE_TAG.match(str(p))
    ]
    where = ".".join(loc) or "body"
    msg = str(first.get("msg", "is not valid"))
    if first.get("type") == "missing":
        if not loc:
            return "missing_field", "a JSON body is required"
        return "missing_field", f"{where}: is required"
    return "invalid_field", f"{where}: {msg}"


def _token_refusal(request: Request) -> str | None:
    """Why a request to a protected path has no acceptable token (signature and expiry only)."""
    tokens = request.app.state.ctx.tokens
    return token_refusal(tokens, request.url.path, request.headers.get("authorization", ""))


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves in the failed envelope with the right status."""

    @app.exception_handler(Refusal)
    async def _refused(request: Request, exc: Refusal) -> JSONResponse:
        return failure(request.url.path, exc.code, exc.detail, status_of(exc))

    @app.exception_handler(FieldError)
    async def _field_error(request: Request, exc: FieldError) -> JSONResponse:
        return failure(request.url.path, exc.code, f"{exc.field}: {exc.detail}", 400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI reads the body before the auth dependency runs: a caller without a valid
        # token learns nothing from how their body would have been judged.
        refusal = _token_refusal(request)
        if refusal is not None:
            return failure(request.url.path, "unauthorized", refusal, 401)
        code, detail = _validation_detail(exc)
        return failure(request.url.path, code, detail, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # A body FastAPI could not even decode (e.g. not UTF-8), read before auth ran.
            refusal = _token_refusal(request)
            if refusal is not None:
                return failure(request.url.path, "unauthorized", refusal, 401)
            detail = "the body could not be parsed: send UTF-8 JSON"
            return failure(request.url.path, "malformed_json", detail, 400)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_field")
        detail = "no such resource" if exc.status_code == 404 else str(exc.detail)
        response = failure(request.url.path, code, detail, exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return failure(request.url.path, "internal_error", "an unexpected error; it is logged", 500)


def prepare_routes(app: FastAPI) -> None:
    """Have FastAPI prepare every route now: it builds an included router's routes (their
    dependencies, parameters and validators) on the first request that reaches them, ~40 ms of
    CPU on the event loop that also paces every call's RTP. Matching a path no route has walks
    every router once; nothing is called."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/.openivr-prepare",
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "app": app,
    }
    for route in app.router.routes:
        route.matches(scope)


def create_app(settings: Settings, layers: tuple[NodeLayer, ...] = ()) -> FastAPI:
    """The API of one node; the database is opened and migrated at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.effective_database_url)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            await migrate(engine)
            ctx = ServerContext.build(settings, engine, make_sessionmaker(engine))
            stack.push_async_callback(ctx.standing.close)
            app.state.ctx = ctx
            app.state.voiceapp_views = ViewCache()
            for extend in layers:
                await extend(app, ctx, stack)
            prepare_routes(app)
            yield

    app = FastAPI(
        title="OpenIVR",
        version=__version__,
        description=(
            "Configure voice apps (IVR menus, announcements, voicemail) over a REST API "
            "compatible with Sonetel's public IVR API. Every answer is an envelope "
            "{resource, status, response}; errors carry {code, detail} and a real HTTP status."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from the node itself
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    # A late media tick names the requests that were on the loop (loopwatch).
    app.add_middleware(RequestActivity)
    # Each request counted by route template and status for /metrics.
    app.add_middleware(RequestMetrics)
    for module in ROUTED:
        app.include_router(module.router)
    app.include_router(console.router)
    app.include_router(monitoring.router)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        """200 when this node can serve (its database answers), else 503; 503 with status
        "draining" while it stops (its calls finish, new ones go to other nodes)."""
        ctx: ServerContext = request.app.state.ctx
        if ctx.stopping:
            calls = ctx.sip_server.active_calls if ctx.sip_server is not None else 0
            if ctx.media_workers is not None:  # the calls are the media processes'
                asked = await ctx.media_workers.numbers()
                calls = sum(numbers.calls_up for numbers in asked if numbers is not None)
            return JSONResponse(
                {"status": "draining", "calls": calls, "version": __version__}, status_code=503
            )
        try:
            async with ctx.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure means this node cannot serve
            return JSONResponse(
                {"status": "unavailable", "detail": str(exc)[:200]}, status_code=503
            )
        return JSONResponse({"status": "ok", "version": __version__})

    return app


def asgi(settings: Settings, layers: tuple[NodeLayer, ...] = ()) -> ASGIApp:
    """The application behind the path-normalising middleware and the request gate."""
    app = create_app(settings, layers)
    routes = [route for module in ROUTED for route in module.router.routes]
    return SlashTolerance(RequestGate(app, routes, lambda: app.state.ctx.tokens))
