"""The guard against a real database: bans that grow, the user lock that spares other
addresses, refusals summed into events, pruning; and who a request is counted against."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from openivr.guard.addresses import Networks, counted_source, forwarded_client
from openivr.guard.events import SecurityLog
from openivr.guard.guessing import Attempt, GuessingGuard, GuessPolicy
from openivr.sip.message import SipRequest, parse_message
from openivr.sip.registrar import client_address
from openivr.store.db import open_database
from openivr.store.models import SecurityBan, SecurityEvent


async def test_bans_double_and_the_user_lock_spares_addresses_that_never_failed(
    database_url: str,
) -> None:
    policy = GuessPolicy(failures=3, window=60, ban_seconds=100, ban_max_seconds=250)
    async with open_database(database_url) as (_engine, sessions):
        events = SecurityLog(sessions, "n1")
        guard = GuessingGuard(sessions, events, policy)

        async def fail(source: str, user: str = "4000000001") -> list[str]:
            attempt = Attempt.of("sip", source, user)
            verdict = await guard.check(attempt)
            assert not verdict.refused
            return [ban.key for ban in await guard.failure(attempt, verdict)]

        # Three addresses fail once each for one user: the user is locked, no address banned.
        assert await fail("192.0.2.1") == []
        assert await fail("192.0.2.2") == []
        assert await fail("192.0.2.3") == ["sip:4000000001"]
        for source in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            locked = await guard.check(Attempt.of("sip", source, "4000000001"))
            assert locked.refused == "user_locked"
            assert 95 <= locked.retry_after() <= 100
        # An address that never failed for the user is still checked; other users are free.
        assert not (await guard.check(Attempt.of("sip", "198.51.100.9", "4000000001"))).refused
        assert not (await guard.check(Attempt.of("sip", "192.0.2.1", "4000000002"))).refused

        # A node that starts afresh (no cache) reads the same from the database.
        fresh = GuessingGuard(sessions, SecurityLog(sessions, "n2"), policy)
        assert (await fresh.check(Attempt.of("sip", "192.0.2.2", "4000000001"))).refused
        assert not (await fresh.check(Attempt.of("sip", "198.51.100.9", "4000000001"))).refused

        # One address guessing many users is banned for all of them, at the first length...
        assert await fail("203.0.113.5", "4000000010") == []
        assert await fail("203.0.113.5", "4000000011") == []
        assert await fail("203.0.113.5", "4000000012") == ["addr:203.0.113.5"]
        banned = await fresh.check(Attempt.of("api", "203.0.113.5", "x@example.com"))
        assert banned.refused == "address_banned" and 95 <= banned.retry_after() <= 100
        # ...and after it ends, three more failures ban it twice as long, then at the cap.
        for expected in (200, 250):
            async with sessions() as db:
                await db.execute(
                    update(SecurityBan)
                    .where(SecurityBan.key == "addr:203.0.113.5")
                    .values(until=datetime.now(UTC) - timedelta(seconds=1))
                )
                await db.commit()
            guard = GuessingGuard(sessions, events, policy)  # forget what this node cached
            await fail("203.0.113.5", "4000000013")
            await fail("203.0.113.5", "4000000014")
            assert await fail("203.0.113.5", "4000000015") == ["addr:203.0.113.5"]
            again = await guard.check(Attempt.of("sip", "203.0.113.5", "4000000016"))
            assert expected - 5 <= again.retry_after() <= expected
        assert events.counts[("ban", "sip", "address_banned")] == 3


async def test_trusted_addresses_are_never_banned(database_url: str) -> None:
    policy = GuessPolicy(failures=2)
    async with open_database(database_url) as (_engine, sessions):
        guard = GuessingGuard(sessions, SecurityLog(sessions, "n1"), policy)
        for user in ("a@example.com", "b@example.com", "c@example.com"):
            attempt = Attempt.of("api", "10.0.0.5", user, trusted=True)
            verdict = await guard.check(attempt)
            assert not verdict.refused
            keys = [b.key for b in await guard.failure(attempt, verdict)]
            assert not any(k.startswith("addr:") for k in keys)


async def test_refusals_are_summed_into_one_event_and_old_events_pruned(
    database_url: str,
) -> None:
    async with open_database(database_url) as (_engine, sessions):
        events = SecurityLog(sessions, "n1", retention_days=1)
        for _ in range(250):
            events.refused("address_banned", "sip", "192.0.2.1", "4000000001")
        events.refused("user_locked", "api", "192.0.2.1", "x@example.com")
        assert events.counts[("refusal", "sip", "address_banned")] == 250
        await events.flush()
        async with sessions() as db:
            rows = (await db.scalars(select(SecurityEvent).order_by(SecurityEvent.reason))).all()
        assert [(r.kind, r.reason, r.detail["count"]) for r in rows] == [
            ("refusal", "address_banned", 250),
            ("refusal", "user_locked", 1),
        ]
        await events.flush()  # nothing new: nothing written
        assert await events.prune(datetime.now(UTC) + timedelta(hours=1)) == 0
        assert await events.prune(datetime.now(UTC) + timedelta(days=2)) == 2


def test_ipv6_sources_are_counted_by_their_64() -> None:
    assert counted_source("2001:db8:1:2:aaaa::1") == counted_source("2001:db8:1:2:bbbb::9")
    assert counted_source("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert counted_source("192.0.2.7") == "192.0.2.7"
    assert counted_source("::ffff:192.0.2.7") == "192.0.2.7"


def test_only_a_trusted_proxy_names_the_client() -> None:
    trusted = Networks.parse(["10.0.0.0/8"])
    assert forwarded_client("10.0.0.2", "198.51.100.7", trusted) == "198.51.100.7"
    assert forwarded_client("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.9", trusted) == (
        "198.51.100.7"
    )
    assert forwarded_client("192.0.2.1", "198.51.100.7", trusted) == "192.0.2.1"  # not trusted
    assert forwarded_client("10.0.0.2", "not-an-address", trusted) == "10.0.0.2"

    register = (
        b"REGISTER sip:openivr.local SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKproxy\r\n"
        b"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKphone;received=198.51.100.7;rport=4000\r\n"
        b"From: <sip:4000000001@openivr.local>;tag=a\r\nTo: <sip:4000000001@openivr.local>\r\n"
        b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(register)
    assert isinstance(request, SipRequest)
    assert client_address(request, ("10.0.0.2", 5060), trusted) == "198.51.100.7"
    # The same message straight from an untrusted address is counted against that address.
    assert client_address(request, ("192.0.2.1", 5060), trusted) == "192.0.2.1"
