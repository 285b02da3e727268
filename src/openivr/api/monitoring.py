"""What an operator's tools ask a node: `/readyz` (may it take traffic) and `/metrics`.

With media processes (`--workers N`) both ask each of them at the time (`processes.py`), so the
API process answers for the whole node."""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from openivr import __version__
from openivr.context import ServerContext
from openivr.guard.addresses import LOOPBACK
from openivr.store.registrations import Registration
from openivr.store.voicemail import DELIVERED, Delivery

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when this node should get new traffic: its database answers, SIP listens (unless
    turned off) and it is not stopping; else 503 naming what is wrong."""
    ctx: ServerContext = request.app.state.ctx
    problems: list[str] = []
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means this node cannot serve
        problems.append(f"database: {str(exc)[:200]}")
    sip = ctx.sip_server
    draining = ctx.stopping or (sip is not None and sip.draining)
    if ctx.media_workers is not None:
        # --workers: SIP is the media processes'; each must answer and listen.
        for index, numbers in enumerate(await ctx.media_workers.numbers(), start=1):
            if numbers is None:
                problems.append(f"sip: media process {index} not answering")
            elif not numbers.listening:
                problems.append(f"sip: media process {index} not listening")
            else:
                draining = draining or numbers.draining
    elif ctx.settings.sip_port and (sip is None or not (sip.udp_port or sip.tcp_port)):
        problems.append("sip: not listening")
    if draining:
        problems.append("draining")
    if problems:
        return JSONResponse(
            {"status": "unavailable", "problems": problems, "version": __version__},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "version": __version__})


def _metrics_allowed(request: Request, ctx: ServerContext) -> bool:
    client = request.client.host if request.client else ""
    settings = ctx.settings
    if client in ctx.metrics_networks:
        return True
    if settings.metrics_token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), settings.metrics_token.encode()
        )
    # Neither a token nor networks configured: only this machine may read them.
    return not settings.metrics_networks and client in LOOPBACK


async def _read_database(ctx: ServerContext) -> None:
    numbers = ctx.metrics.database
    try:
        async with ctx.sessions() as db:
            rows = await db.execute(
                select(Delivery.state, func.count())
                .where(Delivery.state != DELIVERED)
                .group_by(Delivery.state)
            )
            numbers.deliveries = {"pending": 0, "sending": 0, "failed": 0} | {
                str(state): int(count) for state, count in rows.all()
            }
            numbers.registrations = int(
                await db.scalar(
                    select(func.count())
                    .select_from(Registration)
                    .where(Registration.expires_at > datetime.now(UTC))
                )
                or 0
            )
        numbers.read_ok = True
    except Exception as exc:
        log.warning("metrics: could not read the database: %s", exc)
        numbers.read_ok = False


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """This node's metrics in Prometheus' text format (`--metrics-token` or
    `--metrics-networks`; from this machine only when neither is set)."""
    ctx: ServerContext = request.app.state.ctx
    if not _metrics_allowed(request, ctx):
        return Response(
            "metrics need 'Authorization: Bearer <metrics token>' or a listed network\n",
            status_code=403,
            media_type="text/plain",
        )
    await _read_database(ctx)
    if ctx.media_workers is not None:
        ctx.metrics.workers = await ctx.media_workers.numbers()
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
