"""`openivr serve` answers SIP calls: the SIP server, the router and a driver per call."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import FastAPI
from sqlalchemy import update

from openivr.apps.prompts.service import PromptService
from openivr.apps.validation import Refusal
from openivr.audio.wav import write_wav
from openivr.calls.callback import CallbackService
from openivr.calls.driver import CallDriver, TransferRequest, Transferring
from openivr.calls.recordings import CallRecordings
from openivr.calls.records import CallLog
from openivr.calls.router import Destination, Routes, Sender
from openivr.context import ServerContext
from openivr.delivery.deposit import deposit_voicemail
from openivr.engine.config import UserConfig
from openivr.engine.recorder import PromptRecorder
from openivr.engine.routing import Reachability, route_transfer
from openivr.guard.flood import FloodGate
from openivr.settings import Settings
from openivr.sip import call as sip
from openivr.sip.connect import Connector
from openivr.sip.digest import NonceSource
from openivr.sip.recording import Recorder
from openivr.sip.registrar import Registrar
from openivr.sip.server import Accept, Invite, Reject, SipServer, SipServerConfig
from openivr.sip.srtp import parse_mode as parse_srtp_mode
from openivr.sip.tls import TlsConfig, TlsSettingError
from openivr.sip.transfer import LegStatus, TransferLeg, TransferTarget, leg_target
from openivr.store.models import Account, Team, User
from openivr.store.registrations import purge_expired
from openivr.store.snapshot import AccountSnapshot, SnapshotCache

log = logging.getLogger(__name__)

# Before the drain's end, callers still in the flow are told goodbye (a message being recorded
# is stopped, kept and confirmed) this long ahead, at most half the drain.
GOODBYE_SECONDS = 5.0
# How long the node waits, after ending its calls, for their messages to be stored.
STORE_SECONDS = 15.0
ENDING_REASON = "node stopping"


def parse_port_range(text: str) -> tuple[int, int]:
    """'20000-20999' → (20000, 20999), with a clear error for anything else."""
    try:
        low, high = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise ValueError(f"--rtp-ports must look like 20000-20999, got {text!r}") from None
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"--rtp-ports {text!r} must be a range within 1024-65535")
    return low, high


def tls_of(settings: Settings) -> TlsConfig:
    """The node's TLS certificate and CAs, checked (TlsSettingError names the setting)."""
    port = settings.sip_tls_port
    if port and not 0 < port < 65536:
        raise TlsSettingError(f"--sip-tls-port: {port} is not a port from 1 to 65535")
    # With --workers N, worker i listens on --sip-port + i and --sip-tls-port + i.
    count = max(1, settings.workers)
    if port and abs(port - settings.sip_port) < count:
        taken = (
            f"{port} is --sip-port's already"
            if count == 1
            else f"{port}..{port + count - 1} overlap the --workers' SIP ports "
            f"{settings.sip_port}..{settings.sip_port + count - 1}"
        )
        raise TlsSettingError(
            f"--sip-tls-port: {taken} (SIP over TCP listens there); TLS needs ports of its own"
        )
    if port and not settings.tls_cert:
        raise TlsSettingError("--sip-tls-port: needs --tls-cert and --tls-key (PEM files)")
    return TlsConfig.load(settings.tls_cert, settings.tls_key, settings.tls_ca_file)


class TransferService:
    """Engine transfers through the connector: users, numbers, SIP addresses and teams, each
    rung where the engine's rule (`route_transfer`) says with the facts of this moment.

    Knows which users are on a bridged call of this node now (a team ringing in turn skips
    them), and writes who answered a team's call to the database, where `rotate` reads it on
    every node.
    """

    def __init__(self, ctx: ServerContext, connector: Connector):
        self.ctx = ctx
        self.connector = connector
        self.on_call: Counter[str] = Counter()  # user id -> bridged calls here now
        self._pending: set[asyncio.Task[None]] = set()

    async def __call__(
        self, call: sip.MediaCall, request: TransferRequest, on_answer: Callable[[str], None]
    ) -> dict[str, Any]:
        """Ring the target; the leg as a dict for the call record."""
        if request.kind == "user" and request.user_id:
            if request.skip_busy and self.on_call[request.user_id]:
                return self._skipped(request)
            kind, value = "user", request.user_id
        elif request.kind in ("phnum", "other"):
            kind, value = "phnum", request.target
        else:
            kind, value = "sip", request.target
        refused: dict[str, tuple[LegStatus, str]] = {}  # members who cannot be rung now
        if request.kind == "team":
            targets: list[TransferTarget] = []
            for member in request.members:
                target, status, detail = await self.route("user", member)
                if target is None:
                    refused[member] = (status, detail)
                else:
                    targets.append(target)
            if not targets:
                leg = TransferLeg(f"team:{request.team_id}", "", "unreachable")
                entry = self._record(request, leg.finish("unreachable"), refused)
                return entry | {"detail": "no member can be rung now"}
        else:
            target, status, detail = await self.route(kind, value)
            if target is None:
                leg = TransferLeg(leg_target(kind, value), "", status, started_at=datetime.now(UTC))
                return self._record(request, leg.finish(status)) | {"detail": detail}
            targets = [target]
        owner = ""  # whose phone answered (a team rung at once), as the connector says

        def heard(who: str) -> None:
            nonlocal owner
            owner = who

        answered_by = ""

        def answered() -> None:
            nonlocal answered_by
            answered_by = owner or request.user_id or ""
            if answered_by:
                self.on_call[answered_by] += 1
                if request.team_id:
                    self._remember(request.team_id, answered_by)
                self._recorded_for(call, request, answered_by)
            on_answer(answered_by if request.kind == "team" else "")

        leg = await self.connector.connect(
            call,
            targets if request.kind == "team" else targets[0],
            request.caller_id,
            answered,
            timeout=request.ring_seconds,
            bridge=request.team_id is not None or request.bridge,
            on_winner=heard,
        )
        if answered_by:
            self.on_call[answered_by] -= 1
            if not self.on_call[answered_by]:
                del self.on_call[answered_by]
        return self._record(request, leg, refused)

    def _recorded_for(self, call: sip.MediaCall, request: TransferRequest, user_id: str) -> None:
        """A user answered: a recorded call becomes theirs; with `selected`, a user whose calls
        are recorded has it recorded from now on."""
        recordings = self.ctx.recordings
        if recordings is None:
            return
        if call.rtp_session in recordings.live:
            recordings.answered_by(call.rtp_session, user_id)
            return
        account_id = request.account_id
        if not account_id:
            return

        async def decide() -> None:
            try:
                async with self.ctx.sessions() as db:
                    account = await db.get(Account, account_id)
                if not call.ended and await recordings.wanted(account, "inbound", users=(user_id,)):
                    recordings.record(
                        call.rtp_session,
                        call_id=call.call_id,
                        account_id=account_id,
                        until=call.wait_ended(),
                        user_id=user_id,
                    )
            except Exception:  # the call goes on unrecorded
                log.exception("call %s: could not decide whether to record it", call.call_id)

        task = asyncio.get_running_loop().create_task(decide())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def route(self, kind: str, value: str) -> tuple[TransferTarget | None, LegStatus, str]:
        """Where a user, number or address rings now (`route_transfer` with this node's trunk
        and the phones registered now); None, the status and why when it cannot be rung."""
        user: UserConfig | None = None
        registered: frozenset[str] = frozenset()
        if kind == "user":
            async with self.ctx.sessions() as db:
                row = await db.get(User, value)
            if row is not None:
                user = UserConfig(row.user_id, row.account_id, sip_uri=row.sip_uri, phnum=row.phnum)
                registrar = self.connector.registrar
                if registrar is not None and await registrar.bindings(row.user_id):
                    registered = frozenset([row.user_id])
        facts = Reachability(trunk=self.connector.trunk is not None, registered=registered)
        route = route_transfer(kind, value, user, facts)
        owner = value if kind == "user" else ""
        if not route.reachable:
            log.info("transfer to %s:%s: %s", kind, value, route.detail)
            status: LegStatus = "no_trunk" if route.failure == "no_trunk" else "unreachable"
            return None, status, route.detail
        if route.via == "phones":
            target = TransferTarget("user", value)  # its registered phones, nothing else
        elif route.via == "trunk":
            target = TransferTarget("phnum", route.uri, owner=owner)
        else:
            target = TransferTarget("sip", route.uri, owner=owner)
        return target, "answered", ""

    @staticmethod
    def _record(
        request: TransferRequest,
        leg: TransferLeg,
        refused: dict[str, tuple[LegStatus, str]] | None = None,
    ) -> dict[str, Any]:
        """The call record's entry for one ring: the leg, and for a team who was rung."""
        entry = leg.to_dict()
        if request.team_id is None:
            return entry
        entry.update(team_id=request.team_id, attempt=request.attempt)
        if request.kind == "team":
            entry["answered_by"] = leg.answered_by
            results: dict[str, str] = {m: status for m, (status, _) in (refused or {}).items()}
            for place in leg.rung:  # a member's best result over their phones
                owner, status = str(place["owner"]), str(place["status"])
                if owner and (owner not in results or status == "answered"):
                    results[owner] = status
            entry["members"] = [
                {"user_id": m, "status": results.get(m, "unreachable")} for m in request.members
            ]
        else:
            entry["user_id"] = request.user_id
        return entry

    def _skipped(self, request: TransferRequest) -> dict[str, Any]:
        leg = TransferLeg(f"user:{request.user_id}", "", "busy", started_at=datetime.now(UTC))
        entry = self._record(request, leg.finish("busy"))
        entry["detail"] = "on another call of this node: not rung"
        return entry

    def _remember(self, team_id: str, user_id: str) -> None:
        """Who answered the team's call, for `rotate` on every node (written in the background)."""

        async def write() -> None:
            try:
                async with self.ctx.sessions() as db:
                    await db.execute(
                        update(Team).where(Team.team_id == team_id).values(last_answered=user_id)
                    )
                    await db.commit()
            except Exception:  # rotation starts from an older member; the call goes on
                log.exception("could not note who answered team %s", team_id)

        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class CallService:
    """Routes INVITEs and runs each accepted call."""

    def __init__(self, ctx: ServerContext, calls: CallLog):
        self.ctx = ctx
        self.calls = calls
        self.transfer: Transferring | None = None
        self.server: SipServer | None = None
        self.callbacks: CallbackService | None = None
        self.drivers: dict[str, CallDriver] = {}
        self.stop_now = asyncio.Event()  # a second stop signal: end the calls now
        # Apps know their own sip_address: a call to it enters the app without leaving the node.
        # The check of a held snapshot is a fresh read (inline on SQLite): no session, no hops.
        self.snapshots = SnapshotCache(sip_domain=ctx.settings.sip_domain, reader=ctx.standing)
        # Destinations reused while their account's revision holds (calls/router.py).
        self.routes = Routes(ctx.sessions, self.snapshots, ctx.trusted)

    async def route(self, invite: Invite) -> Accept | Reject:
        """A number, app id or shortcode → its app; the recording shortcode from a registered
        user's phone → the recorder; anything else → 404."""
        sender = Sender(invite.source, invite.transport)
        dest, snapshot = await self.routes.find(invite.route_key, invite.caller, sender)
        if dest is None:
            return Reject(404, "Not Found")
        notes = self.calls.notes_for(invite.call_id)
        notes.account_id = dest.account_id
        if dest.recorder_user:
            return Accept(lambda call: self.run_recorder(call, dest))
        if dest.app_id or dest.direct_kind == "csg":
            return Accept(lambda call: self.run_app(call, dest, snapshot))
        if self.transfer is None:
            return Reject(480, "Temporarily Unavailable")
        return Accept(lambda call: self.run_direct(call, dest, snapshot))

    @staticmethod
    def _caller_id(account: Account | None, call: sip.MediaCall) -> str:
        mode = account.caller_id_mode if account else "caller"
        return call.dialed if mode == "dialed" else call.caller

    async def run_app(
        self, call: sip.MediaCall, dest: Destination, snapshot: AccountSnapshot | None = None
    ) -> None:
        """Run the engine for a call routed to a voice app (or straight to a team), on the
        snapshot routing read (or one read now)."""
        self.calls.call_started(
            call.call_id, call.caller, call.dialed, dest.account_id, dest.app_id
        )
        if snapshot is None:
            snapshot = await self.snapshots.current(self.ctx.sessions, dest.account_id)
        await self._record_if_wanted(call, snapshot.account, dest.account_id)

        async def keep(app_id: str, call_id: str, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> str:
            return await deposit_voicemail(
                self.ctx,
                account_id=dest.account_id,
                app_id=app_id,
                caller=call.caller,
                dialed=call.dialed,
                pcm=pcm,
                call_id=call_id,
            )

        driver = CallDriver(
            call,
            snapshot,
            dest.app_id,
            self.ctx.sounds,
            self.calls.hold(call.call_id),
            voicemail=keep,
            transfer=self.transfer,
            caller_id=self._caller_id(snapshot.account, call),
            team_id=dest.direct_target if dest.direct_kind == "csg" else None,
        )
        self.drivers[call.call_id] = driver
        try:
            await driver.run()
        finally:
            del self.drivers[call.call_id]
            self.calls.release(call.call_id)

    async def run_recorder(self, call: sip.MediaCall, dest: Destination) -> None:
        """A user records a prompt's message by phone (engine/recorder.py); a kept recording is
        saved as an uploaded WAV would be (PromptService.record)."""
        self.calls.call_started(call.call_id, call.caller, call.dialed, dest.account_id, "")
        snapshot = await self.snapshots.current(self.ctx.sessions, dest.account_id)

        async def save(prompt_id: str, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> bool:
            data = write_wav(pcm, 8000)
            try:
                async with self.ctx.sessions() as db:
                    service = PromptService(db, dest.account_id, self.ctx.sounds)
                    prompt = await service.one(prompt_id)
                    await service.record(prompt, "recorded-by-phone.wav", data, source="phone")
            except Refusal as exc:
                log.info("recording for prompt %s not saved: %s", prompt_id, exc)
                return False
            except Exception:  # the old message stays; the caller is told nothing was saved
                log.exception("recording for prompt %s could not be saved", prompt_id)
                return False
            log.info("prompt %s recorded by phone by user %s", prompt_id, dest.recorder_user)
            return True

        async def no_voicemail(app_id: str, call_id: str, pcm: Any) -> str:
            raise RuntimeError("the recorder leaves no voicemail")

        driver = CallDriver(
            call,
            snapshot,
            "",
            self.ctx.sounds,
            self.calls.hold(call.call_id),
            voicemail=no_voicemail,
            transfer=None,
            caller_id=call.caller,
            recorder=PromptRecorder(snapshot.config, dest.account_id, dest.recorder_user),
            save_prompt=save,
        )
        self.drivers[call.call_id] = driver
        try:
            await driver.run()
        finally:
            del self.drivers[call.call_id]
            self.calls.release(call.call_id)

    async def _record_if_wanted(
        self, call: sip.MediaCall, account: Account | None, account_id: str
    ) -> None:
        """Record a call the node answered when the account's `call_recording` says so."""
        recordings = self.ctx.recordings
        if recordings is None or account is None or account.call_recording == "off":
            return
        try:
            number = call.dialed if call.dialed.startswith("+") else "+" + call.dialed
            if await recordings.wanted(account, "inbound", number=number, users=(call.caller,)):
                notes = self.calls.notes_for(call.call_id)
                notes.detail["recording_id"] = recordings.record(
                    call.rtp_session,
                    call_id=call.call_id,
                    account_id=account_id,
                    until=call.wait_ended(),
                )
        except Exception:  # the call goes on unrecorded
            log.exception("call %s: could not start its recording", call.call_id)

    @property
    def active_calls(self) -> int:
        """Calls this node carries (routing, ringing, up)."""
        return self.server.active_calls if self.server is not None else 0

    async def drain(self, seconds: float) -> None:
        """Stop the node's calls well: refuse new ones (503) at once, let those in progress go
        on for up to `seconds`, tell those still in a flow goodbye shortly before the end (a
        message being recorded is kept and confirmed), then end the rest, keeping their
        messages. `stop_now` (a second stop signal) skips to the end."""
        server = self.server
        if server is None:
            return
        server.draining = True
        self.ctx.stopping = True  # /healthz and /readyz say so (when the API still answers)
        if not server.active_calls:
            return
        log.info(
            "stopping: %d calls in progress may finish (up to %g s); new calls get 503; "
            "stop again (Ctrl-C) to end them now",
            server.active_calls,
            seconds,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        goodbye_at = deadline - min(GOODBYE_SECONDS, seconds / 2)
        await self._wait_for_calls(goodbye_at)
        if server.active_calls and not self.stop_now.is_set():
            log.info("stopping: saying goodbye to %d calls", len(self.drivers))
            for driver in list(self.drivers.values()):
                driver.end(ENDING_REASON)
            await self._wait_for_calls(deadline)
        if server.active_calls:
            if self.stop_now.is_set():
                log.warning("stopping now: ending %d calls", server.active_calls)
            else:
                log.warning("drain time is up: hanging up %d calls", server.active_calls)
            await self.end_calls()

    async def _wait_for_calls(self, until: float) -> None:
        """Until no call is left, `until` (loop time) passes, or stop_now is set."""
        loop = asyncio.get_running_loop()
        server = self.server
        while server is not None and server.active_calls and not self.stop_now.is_set():
            left = until - loop.time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self.stop_now.wait(), min(left, 0.1))
            except TimeoutError:
                pass

    async def end_calls(self) -> None:
        """End every call now (BYE), keeping messages being recorded; wait until they are
        stored (at most STORE_SECONDS)."""
        drivers = list(self.drivers.values())
        for driver in drivers:
            driver.end(ENDING_REASON, at_once=True)
        if self.callbacks is not None:
            await self.callbacks.end_all()
        if self.server is not None:
            for call in list(self.server.calls.values()):
                if call.call_id not in self.drivers and not call.ended:
                    await call.hangup()  # a number connected straight to a person
        if drivers:
            waits = [asyncio.ensure_future(d.finished.wait()) for d in drivers]
            _done, pending = await asyncio.wait(waits, timeout=STORE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                log.error("stopping: %d calls did not finish storing in time", len(pending))

    async def _account(self, account_id: str) -> Account | None:
        async with self.ctx.sessions() as db:
            return await db.get(Account, account_id)

    async def run_direct(
        self, call: sip.MediaCall, dest: Destination, snapshot: AccountSnapshot | None = None
    ) -> None:
        """A number connected straight to a user, number or SIP address: ring it, bridge (the
        account from the snapshot routing read, or read now)."""
        transfer = self.transfer
        assert transfer is not None
        self.calls.call_started(call.call_id, call.caller, call.dialed, dest.account_id, "")
        notes = self.calls.notes_for(call.call_id)
        await call.answer()
        account = snapshot.account if snapshot else await self._account(dest.account_id)
        await self._record_if_wanted(call, account, dest.account_id)
        request = TransferRequest(
            dest.direct_target,
            dest.direct_kind,
            dest.direct_target if dest.direct_kind == "user" else None,
            self._caller_id(account, call),
            account_id=dest.account_id,
        )
        leg = await transfer(call, request, lambda by: None)
        notes.transfers.append(leg)
        notes.outcome = "transferred" if leg.get("status") == "answered" else "hangup"
        if not call.ended:
            await call.hangup()


REGISTRATION_PURGE_SECONDS = 600.0


async def _purge_registrations(ctx: ServerContext) -> None:
    """Remove expired phone registrations now and then (lookups already skip them)."""
    while True:
        await asyncio.sleep(REGISTRATION_PURGE_SECONDS)
        try:
            async with ctx.sessions() as db:
                removed = await purge_expired(db)
                await db.commit()
            if removed:
                log.info("removed %d expired SIP registrations", removed)
        except Exception:  # the database may be briefly away; try again next time
            log.exception("purging expired SIP registrations failed")


async def install(app: FastAPI, ctx: ServerContext, stack: AsyncExitStack) -> None:
    """Start the SIP server unless --sip-port is 0."""
    settings = ctx.settings
    if settings.sip_port == 0:
        log.info("SIP is off (--sip-port 0)")
        return
    calls = CallLog(ctx.sessions, ctx.settings.node_name or None)
    calls.observers.append(ctx.metrics.observe_call)
    # Calls this node had up when it was last killed are over: the log must not show them live.
    await calls.close_interrupted()
    registrar = Registrar(
        ctx.sessions,
        settings.sip_domain,
        nonces=NonceSource.shared(settings.signing_secret()),
        guard=ctx.guard,
        trusted=ctx.trusted,
    )
    service = CallService(ctx, calls)
    recordings = CallRecordings(ctx, calls.node, Recorder())
    await recordings.recover()
    cutter = asyncio.get_running_loop().create_task(recordings.recorder.run())
    stack.callback(cutter.cancel)
    server = SipServer(
        service.route,
        SipServerConfig(
            host=settings.sip_host,
            port=settings.sip_port,
            rtp_ports=parse_port_range(settings.rtp_ports),
            max_calls=settings.max_calls,
            advertised_address=settings.sip_advertise or None,
            tls_port=settings.sip_tls_port or None,
            tls=tls_of(settings),
            srtp=parse_srtp_mode(settings.srtp),
        ),
        on_call_end=calls.call_ended,
        registrar=registrar,
        flood=FloodGate(settings.sip_rate_limit, settings.sip_rate_burst, ctx.trusted),
        on_flood=functools.partial(ctx.security.flooded, "sip"),
    )
    connector = Connector(
        server,
        trunk=settings.sip_trunk,
        trunk_user=settings.sip_trunk_user,
        trunk_password=settings.sip_trunk_password,
        timeout=settings.transfer_timeout,
        mode="refer" if settings.transfer_mode == "refer" else "bridge",
        registrar=registrar,
    )
    transfers = TransferService(ctx, connector)
    ctx.transfer = service.transfer = transfers
    service.server = server
    ctx.callbacks = service.callbacks = CallbackService(
        ctx, calls, transfers, server, service.snapshots
    )
    try:
        await server.start()
    except OSError as exc:
        raise RuntimeError(
            f"cannot listen for SIP on {settings.sip_host}:{settings.sip_port}"
            f"{f' and TLS port {settings.sip_tls_port}' if settings.sip_tls_port else ''} "
            f"({exc}); choose another --sip-port or --sip-tls-port, or --sip-port 0 to run "
            "without SIP"
        ) from None
    purger = asyncio.get_running_loop().create_task(_purge_registrations(ctx))
    stack.callback(purger.cancel)
    ctx.sip_server, ctx.call_log, ctx.calls = server, calls, service
    ctx.recordings = recordings
    stack.push_async_callback(calls.drain)
    stack.push_async_callback(recordings.finish_all)  # after the calls ended
    stack.push_async_callback(server.stop)
    # What calls keep is frozen out of the garbage collector's way (sip/clock.py says why).
    stack.callback(server.clock.age_heap())
    # Runs first when the node stops (unless `openivr serve` drained already): calls in
    # progress may finish, new ones go elsewhere.
    stack.push_async_callback(service.drain, settings.drain_seconds)
