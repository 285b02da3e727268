"""Who a request comes from: trusted networks, the address a guess is counted against.

An IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so counting single IPv6
addresses would let one machine rotate through 2^64 of them: IPv6 sources are counted by
their /64 network, IPv4 sources by their address.

Requests relayed by a trusted proxy (a balancer, `--trusted-networks`) are counted against the
client the proxy names: the address in `X-Forwarded-For` (HTTP) or in the Via the proxy
stamped with `received` (SIP), read from the nearest hop that is not itself trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Networks:
    """A list of networks (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`) an address is checked
    against; parsed once, checked per request."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)
        self._seen: dict[str, bool] = {}

    @classmethod
    def parse(cls, items: Sequence[str], setting: str = "trusted_networks") -> Networks:
        """Networks from text; ValueError naming the setting and the item otherwise."""
        out: list[Network] = []
        for item in items:
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{setting}: {item!r} is not an address or network (e.g. 10.0.0.0/8)"
                ) from None
        return cls(out)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not self.networks or not isinstance(address, str):
            return False
        known = self._seen.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            inside = False
        else:
            inside = any(ip in net for net in self.networks if net.version == ip.version)
        if len(self._seen) > 4096:  # a cache, not a log of every address ever seen
            self._seen.clear()
        self._seen[address] = inside
        return inside


LOOPBACK = Networks.parse(["127.0.0.0/8", "::1/128"])


def counted_source(address: str) -> str:
    """The form a guess is counted against: the IPv4 address, or the IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def forwarded_client(peer: str, forwarded_for: str, trusted: Networks) -> str:
    """The client of an HTTP request: its peer, or, when the peer is a trusted proxy, the
    nearest address in X-Forwarded-For that is not trusted itself."""
    if peer not in trusted or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return valid_address(hop) or peer
    return (valid_address(hops[0]) or peer) if hops else peer


def valid_address(text: str) -> str | None:
    """The address in its canonical text, or None when `text` is not an IP address."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None
