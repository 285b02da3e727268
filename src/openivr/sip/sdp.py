"""SDP (RFC 4566) and the offer/answer rules (RFC 3264) for one audio stream."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from openivr.audio.g711 import Codec
from openivr.sip.srtp import SECURE_PROFILES, SdesKey, SrtpMode, first_usable

# Which way media flows on a stream (RFC 3264 §5.1), from the point of view of its writer.
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

# Codecs we speak, by encoding name, with their static payload types.
STATIC_CODECS: dict[int, str] = {0: "PCMU", 8: "PCMA"}
SUPPORTED_CODECS = ("PCMU", "PCMA")
DEFAULT_EVENT_PT = 101


class SdpError(ValueError):
    """An SDP body that cannot be parsed; the message names the line."""


class NoCommonCodec(SdpError):
    """The offer has no codec we support (answer 488)."""


@dataclass
class MediaDescription:
    """One m= section."""

    media: str
    port: int
    proto: str
    formats: list[int]
    connection: str | None = None
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: Direction = "sendrecv"
    ptime: int | None = None
    crypto: list[str] = field(default_factory=list)  # a=crypto values (SDES SRTP keys)

    def encoding(self, pt: int) -> str | None:
        """Encoding name/rate of a payload type (`PCMU/8000`), static types included."""
        if pt in self.rtpmap:
            return self.rtpmap[pt]
        if pt in STATIC_CODECS:
            return f"{STATIC_CODECS[pt]}/8000"
        return None


@dataclass
class SessionDescription:
    """A parsed SDP body."""

    origin: str
    connection: str | None
    media: list[MediaDescription]
    session_name: str = "-"
    direction: Direction = "sendrecv"

    @classmethod
    def parse(cls, body: bytes | str) -> SessionDescription:
        """Parse an SDP body; raises SdpError naming the bad line."""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        origin = ""
        connection: str | None = None
        session_name = "-"
        direction: Direction = "sendrecv"
        media: list[MediaDescription] = []
        for raw in text.replace("\r\n", "\n").split("\n"):
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"line {line[:40]!r} is not '<type>=<value>'")
            kind, value = line[0], line[2:]
            current = media[-1] if media else None
            if kind == "o":
                origin = value
            elif kind == "s":
                session_name = value
            elif kind == "c":
                addr = _parse_connection(value)
                if current is None:
                    connection = addr
                else:
                    current.connection = addr
            elif kind == "m":
                media.append(_parse_media(value))
            elif kind == "a":
                name, _, arg = value.partition(":")
                if name in DIRECTIONS:
                    if current is None:
                        direction = name
                    else:
                        current.direction = name
                elif current is not None:
                    _media_attribute(current, name, arg)
        if not media:
            raise SdpError("SDP has no m= line")
        for m in media:
            if m.direction == "sendrecv" and direction != "sendrecv":
                m.direction = direction
        return cls(origin, connection, media, session_name, direction)

    def audio(self) -> MediaDescription | None:
        """The first audio stream with a non-zero port."""
        for m in self.media:
            if m.media == "audio" and m.port != 0:
                return m
        return None

    def address_of(self, m: MediaDescription) -> str | None:
        """The connection address for a stream (media level wins over session level)."""
        return m.connection or self.connection


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"c={value[:40]!r} is not 'IN IP4 <address>'")
    return parts[2].split("/", 1)[0]


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"m={value[:40]!r} needs media, port, proto and formats")
    port_text = parts[1].split("/", 1)[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"m= port {parts[1]!r} is not 0-65535")
    formats: list[int] = []
    for fmt in parts[3:]:
        if fmt.isdigit() and int(fmt) < 128:
            formats.append(int(fmt))
    return MediaDescription(parts[0], int(port_text), parts[2], formats)


def _media_attribute(m: MediaDescription, name: str, arg: str) -> None:
    if name in ("rtpmap", "fmtp"):
        pt_text, _, rest = arg.partition(" ")
        if not pt_text.isdigit():
            return
        target = m.rtpmap if name == "rtpmap" else m.fmtp
        target[int(pt_text)] = rest.strip()
    elif name == "ptime" and arg.strip().isdigit():
        m.ptime = int(arg.strip())
    elif name == "crypto":
        m.crypto.append(arg.strip())


@dataclass(frozen=True)
class MediaAgreement:
    """What both sides agreed: codec, payload types and where to send RTP."""

    codec: Codec
    payload_type: int
    event_payload_type: int | None
    remote_address: str
    remote_port: int
    direction: Direction  # ours, as in our answer: the offer's mirrored
    profile: str = "RTP/AVP"  # the offer's m= profile, which our answer repeats
    # The far end's SRTP key: set when the media is SRTP (see srtp.agree), else None.
    srtp: SdesKey | None = None
    # Every G.711 payload type the offer maps, with its codec: what the far end may send us.
    # Each packet is decoded by its own payload type; one not here is not audio we know.
    audio_types: tuple[tuple[int, Codec], ...] = ()

    @property
    def receives(self) -> dict[int, Codec]:
        """Payload type → codec of the audio we accept: the offer's G.711 types and ours."""
        return {**dict(self.audio_types), self.payload_type: self.codec}

    @property
    def may_send(self) -> bool:
        """Whether we send RTP: the far end gave an address and wants to hear us. It holds with
        a=sendonly or a=inactive (RFC 3264 §8.4), or, as older phones do, c=0.0.0.0 or port 0."""
        held = self.remote_address in ("0.0.0.0", "::") or self.remote_port == 0
        return not held and self.direction in ("sendrecv", "sendonly")


_PROFILES = ("RTP/AVP", "RTP/AVPF", *SECURE_PROFILES)

_ANSWER_DIRECTION: dict[Direction, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def negotiate(offer: SessionDescription) -> MediaAgreement:
    """Choose the first offered codec we support; raises NoCommonCodec (→ 488)."""
    audio = offer.audio()
    if audio is None:
        raise NoCommonCodec("offer has no audio stream")
    profile = audio.proto.upper()
    if profile not in _PROFILES:
        raise NoCommonCodec(f"audio transport {audio.proto} is not RTP/AVP or RTP/SAVP")
    address = offer.address_of(audio)
    if address is None:
        raise SdpError("offer has no c= connection address")
    chosen: tuple[Codec, int] | None = None
    event_pt: int | None = None
    audio_types: list[tuple[int, Codec]] = []
    for pt in audio.formats:
        encoding = (audio.encoding(pt) or "").split("/")
        name = encoding[0].upper()
        rate = encoding[1] if len(encoding) > 1 else ""
        if name in SUPPORTED_CODECS and rate in ("8000", ""):
            audio_types.append((pt, cast(Codec, name)))
            if chosen is None:
                chosen = (cast(Codec, name), pt)
        elif event_pt is None and name == "TELEPHONE-EVENT" and rate == "8000":
            event_pt = pt
    if chosen is None:
        offered = ", ".join(str(pt) for pt in audio.formats)
        raise NoCommonCodec(f"none of the offered payload types ({offered}) is PCMU or PCMA")
    return MediaAgreement(
        codec=chosen[0],
        payload_type=chosen[1],
        event_payload_type=event_pt,
        remote_address=address,
        remote_port=audio.port,
        direction=_ANSWER_DIRECTION.get(audio.direction, "sendrecv"),
        profile=profile,
        srtp=first_usable(audio.crypto),
        audio_types=tuple(audio_types),
    )


@dataclass
class LocalSession:
    """Our side of the SDP: origin ids that stay for the call, version bumped per change, and
    our SRTP key when the call may be or is SRTP."""

    address: str
    port: int
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    version: int = 0
    key: SdesKey | None = None

    def answer(self, agreement: MediaAgreement) -> bytes:
        """The SDP answer for an agreement."""
        formats = [agreement.payload_type]
        attrs = [f"a=rtpmap:{agreement.payload_type} {agreement.codec}/8000"]
        if agreement.event_payload_type is not None:
            pt = agreement.event_payload_type
            formats.append(pt)
            attrs += [f"a=rtpmap:{pt} telephone-event/8000", f"a=fmtp:{pt} 0-16"]
        attrs += ["a=ptime:20", f"a={agreement.direction}"]
        if agreement.srtp is not None and self.key is not None:
            attrs.append(self.key.attribute(tag=agreement.srtp.tag))  # under the offer's tag
        return self._render(formats, attrs, agreement.profile)

    def offer(self, prefer: Codec = "PCMU", srtp: SrtpMode = "off") -> bytes:
        """An SDP offer with every codec we support, `prefer` first (it saves transcoding);
        with our key under `srtp` 'offer' (RTP/AVP, plain RTP if not taken) or 'require'
        (RTP/SAVP)."""
        pt = DEFAULT_EVENT_PT
        codecs = [0, 8] if prefer == "PCMU" else [8, 0]
        attrs = [f"a=rtpmap:{c} {STATIC_CODECS[c]}/8000" for c in codecs] + [
            f"a=rtpmap:{pt} telephone-event/8000",
            f"a=fmtp:{pt} 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ]
        profile = "RTP/AVP"
        if srtp != "off" and self.key is not None:
            attrs.append(self.key.attribute())
            profile = "RTP/SAVP" if srtp == "require" else "RTP/AVP"
        return self._render([*codecs, pt], attrs, profile)

    def _render(self, formats: list[int], attrs: list[str], profile: str = "RTP/AVP") -> bytes:
        self.version += 1
        ip = "IP6" if ":" in self.address else "IP4"
        lines = [
            "v=0",
            f"o=openivr {self.session_id} {self.version} IN {ip} {self.address}",
            "s=OpenIVR",
            f"c=IN {ip} {self.address}",
            "t=0 0",
            f"m=audio {self.port} {profile} {' '.join(str(f) for f in formats)}",
            *attrs,
        ]
        return ("\r\n".join(lines) + "\r\n").encode()
