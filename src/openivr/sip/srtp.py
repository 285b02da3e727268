"""SRTP with SDES keys (RFC 3711, RFC 4568): AES_CM_128_HMAC_SHA1_80, keys in the SDP.

Each side of a call picks its own master key and salt and sends it in an `a=crypto` line of
its SDP; each encrypts what it sends with its own key. Keys travel in the SDP, so they are
only as secret as the signalling: we take and give keys over TLS only (`agree`), and refuse
them over UDP or TCP. The ciphers are libsrtp's (`pylibsrtp`), not ours.

SRTP sits between an `RtpSession` and its UDP socket (`SrtpSocket`, the very same socket file
under a layer that protects what is sent and unprotects what is read), so everything above it
— the media clock, recording, key detection, bridges — sees plain RTP, and a call without SRTP
pays nothing for it.

What `--srtp` means:
* `off`: never SRTP. An offer that insists on it (RTP/SAVP) gets 488; one that only proposes it
  (RTP/AVP with a=crypto) is answered in plain RTP.
* `offer` (default): calls we answer get SRTP when they ask for it over TLS; calls we place over
  TLS propose it (RTP/AVP with a=crypto) and fall back to plain RTP if the far end does not take
  it. A key offered over UDP/TCP is not taken (488 when the offer insists).
* `require`: no audio in clear on any leg. Calls we answer must come over TLS and offer SRTP,
  else 488; calls we place go only to targets reached over TLS, offer RTP/SAVP, and an answer
  without a key is hung up (the transfer fails as rejected, 488).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import pylibsrtp

if TYPE_CHECKING:
    from openivr.sip.media import RtpSession

SrtpMode = Literal["off", "offer", "require"]
SRTP_MODES: tuple[SrtpMode, ...] = get_args(SrtpMode)

SUITE = "AES_CM_128_HMAC_SHA1_80"
_KEY_BYTES = 30  # 128-bit master key + 112-bit master salt
_PLAIN_PROFILES = ("RTP/AVP", "RTP/AVPF")
SECURE_PROFILES = ("RTP/SAVP", "RTP/SAVPF")


class SrtpRefused(ValueError):
    """An offer or answer the SRTP setting does not allow (answered 488); says why."""


def parse_mode(text: str) -> SrtpMode:
    """The --srtp setting; ValueError names it and the choices."""
    mode = text.strip().lower()
    for known in SRTP_MODES:
        if mode == known:
            return known
    raise ValueError(f"--srtp: {text!r} is not one of {', '.join(SRTP_MODES)}")


@dataclass(frozen=True)
class SdesKey:
    """One `a=crypto` line: its tag, its suite and the master key with its salt."""

    tag: int
    suite: str
    key: bytes

    @classmethod
    def new(cls, tag: int = 1) -> SdesKey:
        """A fresh random key of our suite."""
        return cls(tag, SUITE, secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def parse(cls, value: str) -> SdesKey | None:
        """`1 AES_CM_128_HMAC_SHA1_80 inline:<base64>[|lifetime]` → a key; None for a line we
        cannot use (another suite, an MKI, several keys, session parameters, a bad key)."""
        parts = value.split()
        if len(parts) != 3 or not parts[0].isdigit() or parts[1].upper() != SUITE:
            return None
        method, _, key_info = parts[2].partition(":")
        if method.lower() != "inline" or ";" in key_info:
            return None
        encoded, *extra = key_info.split("|")
        if any(":" in item for item in extra) or len(extra) > 1:
            return None  # an MKI (value:length): libsrtp's session here takes none
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(key) != _KEY_BYTES:
            return None
        return cls(int(parts[0]), SUITE, key)

    def attribute(self, tag: int | None = None) -> str:
        """This key as an SDP attribute line (under `tag`, the answered offer's, when given)."""
        encoded = base64.b64encode(self.key).decode()
        return f"a=crypto:{self.tag if tag is None else tag} {self.suite} inline:{encoded}"


def first_usable(lines: list[str]) -> SdesKey | None:
    """The first of an m= section's `a=crypto` values that we can use."""
    for value in lines:
        key = SdesKey.parse(value)
        if key is not None:
            return key
    return None


def agree(
    profile: str, key: SdesKey | None, mode: SrtpMode, over_tls: bool, *, what: str = "offer"
) -> SdesKey | None:
    """Whether a call's media is SRTP: the far end's key to use, or None for plain RTP.
    SrtpRefused (→ 488) when the setting and what was offered cannot meet."""
    insists = profile.upper() in SECURE_PROFILES
    if insists and mode == "off":
        raise SrtpRefused("SRTP is off on this node")
    if insists and key is None:
        raise SrtpRefused(f"no a=crypto line with {SUITE}")
    if (insists or mode == "require") and not over_tls:
        raise SrtpRefused("SRTP keys are taken over TLS only (sips:)")
    if mode == "require" and key is None:
        raise SrtpRefused(f"this node requires SRTP ({SUITE}) and the {what} has none")
    if mode == "off" or not over_tls:
        return None
    return key


def secure(session: RtpSession, ours: SdesKey, theirs: SdesKey) -> None:
    """From now on the session's media is SRTP with these keys (new keys if it was already)."""
    sock = session.udp_socket
    if isinstance(sock, SrtpSocket):
        sock.rekey(ours, theirs)
    else:
        session.wrap_socket(lambda plain: SrtpSocket.around(plain, ours, theirs))


def unsecure(session: RtpSession) -> None:
    """From now on the session's media is plain RTP again (a fork that answered without SRTP
    after another fork's early media with it)."""
    if isinstance(session.udp_socket, SrtpSocket):
        session.wrap_socket(
            lambda secure: socket.socket(
                secure.family, secure.type, secure.proto, fileno=secure.detach()
            )
        )


def rejected_packets(session: RtpSession) -> int:
    """Packets dropped because they were not SRTP under the far end's key (0 for plain RTP)."""
    sock = session.udp_socket
    return sock.rejected if isinstance(sock, SrtpSocket) else 0


class SrtpSocket(socket.socket):
    """A media socket that sends SRTP and reads only SRTP that authenticates; to its session
    it is the plain RTP socket it was (the same file, so whoever watches it keeps watching)."""

    rejected: int
    _outbound: Any
    _inbound: Any

    @classmethod
    def around(cls, sock: socket.socket, ours: SdesKey, theirs: SdesKey) -> SrtpSocket:
        """Take over `sock` (it must not be used any more): our key out, theirs in."""
        secure = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        secure.setblocking(False)
        secure.rejected = 0
        secure.rekey(ours, theirs)
        return secure

    def rekey(self, ours: SdesKey, theirs: SdesKey) -> None:
        """Use new keys from now on (a re-INVITE may bring them)."""
        profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
        self._outbound = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=ours.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        self._inbound = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=theirs.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )

    def sendto(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        """Encrypt and authenticate one RTP packet, then send it (OSError when it cannot be)."""
        try:
            packet = self._outbound.protect(bytes(data))
        except pylibsrtp.Error as exc:  # the session counts a failed send as a lost packet
            raise OSError(f"SRTP protect failed: {exc}") from None
        return super().sendto(packet, *args)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:  # type: ignore[override]
        """The next packet that authenticates, decrypted (others are counted and dropped);
        BlockingIOError when none is left."""
        while True:
            data, addr = super().recvfrom(bufsize, flags)
            try:
                return self._inbound.unprotect(data), addr
            except pylibsrtp.Error:  # forged, replayed, or not SRTP at all
                self.rejected += 1

    def recvmsg(  # type: ignore[override]
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """As recvfrom, with ancillary data (benches read kernel receive times)."""
        while True:
            data, ancillary, msg_flags, addr = super().recvmsg(bufsize, ancbufsize, flags)
            try:
                return self._inbound.unprotect(data), ancillary, msg_flags, addr
            except pylibsrtp.Error:
                self.rejected += 1
