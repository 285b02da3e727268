"""Plugs voicemail into `openivr serve`: the API routes and the delivery worker."""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from openivr.api import voicemail as voicemail_api
from openivr.context import ServerContext
from openivr.delivery.policy import DeliveryPolicy
from openivr.delivery.worker import DeliveryWorker


async def install(app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Add the voicemail API and run the delivery worker until the node stops."""
    app.include_router(voicemail_api.router)
    policy = DeliveryPolicy.from_settings(ctx.settings)
    worker = DeliveryWorker(ctx, policy)
    ctx.delivery_policy = policy
    ctx.delivery_worker = worker
    await worker.start()
    stack.push_async_callback(worker.stop)
