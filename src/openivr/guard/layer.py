"""The node's security upkeep: refusals written every minute, old events pruned every hour."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from fastapi import FastAPI

from openivr.context import ServerContext
from openivr.security import prepare_unknown_user_hash


async def install(_app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Run the security log's flush-and-prune loop while the node runs."""
    await prepare_unknown_user_hash()
    task = asyncio.get_running_loop().create_task(ctx.security.run())

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(stop)
