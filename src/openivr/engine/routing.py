"""Where a transfer rings, asked with the facts of the moment by real calls, the simulator and
validate alike: a user's registered phones, else their sip_uri, else their phnum through the
trunk; a number through the trunk; a SIP address directly, or the app whose own address it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openivr.engine.config import AppConfig, CallConfig, UserConfig


@dataclass(frozen=True, slots=True)
class Reachability:
    """What the node knows now about reaching people (the driver or simulation supplies it):
    whether a SIP trunk carries calls to numbers, and which users have a phone registered."""

    trunk: bool = True
    registered: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Route:
    """How a transfer target is reached now: `via` phones | sip | trunk with `uri` (the SIP URI
    or the number); or `via` "" with `failure` no_trunk | no_phone and `detail` in words."""

    via: Literal["", "phones", "sip", "trunk"]
    uri: str = ""
    failure: Literal["", "no_trunk", "no_phone"] = ""
    detail: str = ""

    @property
    def reachable(self) -> bool:
        """Whether the target can be rung now."""
        return self.via != ""


def route_transfer(kind: str, target: str, user: UserConfig | None, facts: Reachability) -> Route:
    """Where a Transfer(kind, target) rings now: a user's registered phones, else their sip_uri,
    else their phnum through the trunk; a number through the trunk; a SIP address directly."""
    if kind == "user":
        if user is None:
            return Route("", failure="no_phone", detail="no such user")
        if user.user_id in facts.registered:
            return Route("phones")
        if user.sip_uri:
            return Route("sip", user.sip_uri)
        if user.phnum and facts.trunk:
            return Route("trunk", user.phnum)
        if user.phnum:
            return Route(
                "",
                failure="no_trunk",
                detail=f"no phone registered, and their number {user.phnum} needs a SIP trunk "
                "(--sip-trunk), which this node has not",
            )
        return Route("", failure="no_phone", detail="no phone registered, no sip_uri, no phnum")
    if kind == "phnum":
        if facts.trunk:
            return Route("trunk", target)
        return Route(
            "",
            failure="no_trunk",
            detail=f"calls to numbers ({target}) need a SIP trunk (--sip-trunk), "
            "which this node has not",
        )
    return Route("sip", target)


def is_number(target: str) -> bool:
    """Whether a `call` target is a phone number (+ and digits), not a SIP address."""
    digits = target[1:] if target.startswith("+") else ""
    return digits.isdigit()


def sip_address(target: str) -> str:
    """A SIP address as a sip: URI ("VA...@openivr.local" → "sip:VA...@openivr.local")."""
    return target if target.lower().startswith(("sip:", "sips:")) else "sip:" + target


def local_app(config: CallConfig, account_id: str, address: str) -> AppConfig | None:
    """The app of `account_id` whose own sip_address `address` is (a call to it enters it)."""
    wanted = _user_at_host(address)
    app = config.app(wanted.split("@", 1)[0])
    if app is None or app.account_id != account_id or not app.sip_address:
        return None
    return app if _user_at_host(app.sip_address) == wanted else None


def _user_at_host(uri: str) -> str:
    """'user@host' of a SIP URI, lower-cased host, without scheme, port or parameters."""
    bare = uri.split(":", 1)[1] if ":" in uri.split("@", 1)[0] else uri
    user, _, rest = bare.partition("@")
    host = rest.split(";", 1)[0].split("?", 1)[0]
    if host.startswith("["):
        host = host[: host.find("]") + 1]  # an IPv6 address, with or without a port
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    return f"{user}@{host.lower()}"
