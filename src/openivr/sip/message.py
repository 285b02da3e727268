"""SIP messages (RFC 3261 §7): requests and responses that parse and serialise themselves."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# Compact header forms (RFC 3261 §7.3.3 and later RFCs) expanded to their full names.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "b": "Referred-By",
    "x": "Session-Expires",
}

# Canonical spelling of the headers we write or read, keyed by lower-case name.
_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        *COMPACT_FORMS.values(),
        "CSeq",
        "Max-Forwards",
        "Allow",
        "Accept",
        "Record-Route",
        "Route",
        "User-Agent",
        "Server",
        "Retry-After",
        "WWW-Authenticate",
        "Require",
        "Unsupported",
        "Min-SE",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "Subscription-State",
        "Expires",
        "Min-Expires",
    )
}

TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~\-]+$")
MAGIC_COOKIE = "z9hG4bK"
MAX_MESSAGE_BYTES = 65_535

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    302: "Moved Temporarily",
    401: "Unauthorized",
    407: "Proxy Authentication Required",
    423: "Interval Too Brief",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
}


class SipParseError(ValueError):
    """A SIP message that cannot be understood; the message says which part is wrong."""


# Every header read or written asks this (about 100 times per call), for a few dozen names.
@functools.lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """The full, canonically spelled form of a header name (compact forms expanded)."""
    lower = name.strip().lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, "-".join(part.capitalize() for part in lower.split("-")))


def new_tag() -> str:
    """A fresh random From/To tag."""
    return secrets.token_hex(6)


def new_branch() -> str:
    """A fresh RFC 3261 Via branch (with the magic cookie)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str]:
    """Parse `;name=value;flag` parameters (leading `;` optional); names lower-cased."""
    params: dict[str, str] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        name, _, val = item.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return params


@dataclass
class Headers:
    """Ordered SIP headers with case-insensitive, compact-form-aware lookup."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, or `default`."""
        wanted = canonical_name(name)
        for key, value in self.items:
            if key == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """All values of a header, comma-separated lists split (for Via, Allow, ...)."""
        wanted = canonical_name(name)
        values: list[str] = []
        for key, value in self.items:
            if key == wanted:
                values.extend(split_commas(value))
        return values

    def add(self, name: str, value: str) -> None:
        """Append a header."""
        self.items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of a header by one value."""
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Drop a header."""
        wanted = canonical_name(name)
        self.items = [(k, v) for k, v in self.items if k != wanted]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers(list(self.items))


@dataclass(frozen=True)
class SipUri:
    """A sip:/sips:/tel: URI, split enough to route on."""

    scheme: str
    user: str | None
    host: str
    port: int | None
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse `sip:user:password@host:port;params?headers`."""
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        if not sep or scheme.lower() not in ("sip", "sips", "tel"):
            raise SipParseError(f"URI {text!r} has no sip:, sips: or tel: scheme")
        scheme = scheme.lower()
        rest = rest.split("?", 1)[0]
        if scheme == "tel":
            number, _, params = rest.partition(";")
            return cls(scheme, number or None, "", None, parse_params(params))
        userinfo, at, hostpart = rest.rpartition("@")
        user = userinfo.split(":", 1)[0] if at else None
        hostport, _, params = hostpart.partition(";")
        host, port = _split_hostport(hostport)
        if not host:
            raise SipParseError(f"URI {text!r} has no host")
        return cls(scheme, user or None, host, port, parse_params(params))

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}"
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{k}={v}" if v else f";{k}" for k, v in self.params.items())
        return f"{self.scheme}:{user}{host}{port}{params}"


def _split_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SipParseError(f"port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


@dataclass(frozen=True)
class NameAddress:
    """A From/To/Contact value: optional display name, URI and header parameters."""

    display: str
    uri: str
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        """Parse `"Name" <uri>;tag=x` or `uri;tag=x`."""
        text = text.strip()
        if "<" in text:
            display, _, rest = text.partition("<")
            uri, close, params = rest.partition(">")
            if not close:
                raise SipParseError(f"address {text!r} has an unclosed '<'")
            return cls(display.strip().strip('"'), uri.strip(), parse_params(params))
        uri, _, params = text.partition(";")
        if not uri:
            raise SipParseError("address is empty")
        return cls("", uri.strip(), parse_params(params))

    @property
    def tag(self) -> str | None:
        """The dialog tag parameter, if any."""
        return self.params.get("tag") or None

    def user(self) -> str | None:
        """The user part of the URI, or None when the URI has none or does not parse."""
        try:
            return SipUri.parse(self.uri).user
        except SipParseError:
            return None


@dataclass(frozen=True)
class Via:
    """One Via header value: transport, sent-by and parameters."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse `SIP/2.0/UDP host:port;branch=...`."""
        proto, _, rest = text.strip().partition(" ")
        parts = proto.split("/")
        if len(parts) != 3 or parts[0].upper() != "SIP":
            raise SipParseError(f"Via {text!r} does not start with SIP/2.0/<transport>")
        sent_by, _, params = rest.strip().partition(";")
        host, port = _split_hostport(sent_by)
        if not host:
            raise SipParseError(f"Via {text!r} has no sent-by host")
        return cls(parts[2].upper(), host, port, parse_params(params))

    @property
    def branch(self) -> str:
        """The branch parameter ('' when missing)."""
        return self.params.get("branch", "")


@dataclass(frozen=True)
class CSeq:
    """The CSeq header: sequence number and method."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse `314159 INVITE`."""
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not TOKEN.match(parts[1]):
            raise SipParseError(f"CSeq {text!r} is not '<number> <method>'")
        number = int(parts[0])
        if number >= 2**31:
            raise SipParseError(f"CSeq number {number} is larger than 2**31 - 1")
        return cls(number, parts[1].upper())

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


# A message's headers are read many times while it is handled (validation, the transaction's
# and the dialog's matching, the responses), and a call's messages repeat most values. Their
# parsed forms are frozen, so each distinct value is parsed once while it is in use (a bounded
# cache: a flood of new values only evicts). Nothing here mutates a parsed form's params.
_PARSED_VALUES = 1024


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _cseq(text: str) -> CSeq:
    return CSeq.parse(text)


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _address(text: str) -> NameAddress:
    return NameAddress.parse(text)


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _vias(values: tuple[str, ...]) -> tuple[Via, ...]:
    return tuple(Via.parse(v) for value in values for v in split_commas(value))


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _uri(text: str) -> SipUri:
    return SipUri.parse(text)


@dataclass
class SipMessage:
    """Headers and body shared by requests and responses."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        return _cseq(self.headers.get("CSeq") or "")

    @property
    def from_(self) -> NameAddress:
        """The parsed From header."""
        return _address(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddress:
        """The parsed To header."""
        return _address(self.headers.get("To") or "")

    @property
    def vias(self) -> list[Via]:
        """Every Via, top first."""
        return list(_vias(tuple(value for name, value in self.headers if name == "Via")))

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters."""
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def _serialise(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{k}: {v}" for k, v in self.headers if k != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class SipRequest(SipMessage):
    """A SIP request."""

    method: str = ""
    uri: str = ""

    def serialise(self) -> bytes:
        """Bytes on the wire (Content-Length set from the body)."""
        return self._serialise(f"{self.method} {self.uri} SIP/2.0")

    @property
    def request_uri(self) -> SipUri:
        """The parsed Request-URI."""
        return _uri(self.uri)


@dataclass
class SipResponse(SipMessage):
    """A SIP response."""

    status: int = 200
    reason: str = "OK"

    def serialise(self) -> bytes:
        """Bytes on the wire (Content-Length set from the body)."""
        return self._serialise(f"SIP/2.0 {self.status} {self.reason}")


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split raw bytes at the blank line ending the headers; None when there is none yet."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep) :]
    return None


def _header_lines(head: str) -> Iterable[str]:
    # Unfold continuation lines (RFC 3261 §7.3.1): a line starting with SP/HT continues the last.
    current: str | None = None
    for line in head.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t"):
            if current is None:
                raise SipParseError("message starts with a folded header line")
            current += " " + line.strip()
            continue
        if current is not None:
            yield current
        current = line
    if current is not None:
        yield current


def parse_message(data: bytes, *, stream: bool = False) -> SipRequest | SipResponse:
    """Parse one SIP message; `stream` means a TCP frame where Content-Length is exact."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message of {len(data)} bytes is larger than {MAX_MESSAGE_BYTES}")
    parts = split_head(data.lstrip(b"\r\n"))
    if parts is None:
        raise SipParseError("message has no blank line after the headers")
    raw_head, body = parts
    try:
        head = raw_head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"headers are not UTF-8 ({exc.reason})") from None
    lines = list(_header_lines(head))
    if not lines or not lines[0]:
        raise SipParseError("message has no start line")
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or not TOKEN.match(name):
            raise SipParseError(f"header line {line[:60]!r} is not 'Name: value'")
        headers.add(name, value.strip())
    length_text = headers.get("Content-Length")
    if length_text is not None:
        if not length_text.isdigit():
            raise SipParseError(f"Content-Length {length_text!r} is not a number")
        length = int(length_text)
        if length > len(body):
            raise SipParseError(f"Content-Length {length} exceeds the {len(body)} body bytes")
        body = body[:length]
    elif stream:
        body = b""
    start = lines[0]
    if start.startswith("SIP/"):
        return _parse_status_line(start, headers, body)
    return _parse_request_line(start, headers, body)


def _parse_status_line(start: str, headers: Headers, body: bytes) -> SipResponse:
    version, _, rest = start.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version!r}")
    if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
        raise SipParseError(f"status code {code!r} is not 100-699")
    response = SipResponse(headers, body, status=int(code), reason=reason.strip())
    _require_common(response)
    return response


def _parse_request_line(start: str, headers: Headers, body: bytes) -> SipRequest:
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError(f"request line {start[:80]!r} is not 'METHOD URI SIP/2.0'")
    method, uri, version = parts
    if not TOKEN.match(method):
        raise SipParseError(f"method {method[:20]!r} is not a token")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version[:20]!r}")
    request = SipRequest(headers, body, method=method.upper(), uri=uri)
    request.request_uri  # noqa: B018 - validates the Request-URI now, not at first use
    _require_common(request)
    if request.cseq.method != request.method:
        raise SipParseError(f"CSeq method {request.cseq.method} differs from {request.method}")
    return request


def _require_common(message: SipMessage) -> None:
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if not message.headers.get(name):
            raise SipParseError(f"missing {name} header")
    message.cseq  # noqa: B018 - validates
    message.vias  # noqa: B018
    message.from_  # noqa: B018
    message.to  # noqa: B018


def response_to(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    extra: Iterable[tuple[str, str]] = (),
) -> SipResponse:
    """A response to `request` with Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6)."""
    headers = Headers()
    for name in ("Via", "Record-Route"):
        for key, value in request.headers:
            if key == name:
                headers.add(key, value)
    headers.add("From", request.headers.get("From") or "")
    to = request.headers.get("To") or ""
    if to_tag and status != 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    headers.add("To", to)
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", request.headers.get("CSeq") or "")
    for name, value in extra:
        headers.add(name, value)
    return SipResponse(headers, body, status=status, reason=reason or REASONS.get(status, ""))


# What a request says -------------------------------------------------------------------------


def route_key_of(request: SipRequest) -> str:
    """The number the caller dialled: Request-URI user, else the To user, else ''."""
    try:
        user = request.request_uri.user
    except SipParseError:
        user = None
    return user or request.to.user() or ""


def caller_of(request: SipRequest) -> str:
    """Who calls: the From URI user, else its display name, else ''."""
    from_ = request.from_
    return from_.user() or from_.display or ""


def contact_uri(contact: str) -> str | None:
    """The URI of a Contact value (`<sip:...>;params` or `sip:...;params`), or None if empty."""
    if not contact:
        return None
    if "<" in contact:
        return contact.split("<", 1)[1].split(">", 1)[0].strip() or None
    return contact.split(";", 1)[0].strip() or None


def bad_request(data: bytes, problem: str) -> bytes | None:
    """A 400 for a request we could not parse, if enough of it is readable to address one."""
    parts = split_head(data.lstrip(b"\r\n"))
    head = (parts[0] if parts else data).decode("utf-8", "replace")
    lines = head.replace("\r\n", "\n").split("\n")
    first = lines[0].split(" ")
    if not first or not TOKEN.match(first[0]) or first[0].upper() in ("ACK", "SIP/2.0"):
        return None  # never answer an ACK or a response
    if first[0].startswith("SIP/"):
        return None
    copied: list[str] = []
    needed = {"via", "from", "to", "call-id", "cseq"}
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        lname = compact.get(name.strip().lower(), name.strip().lower())
        if colon and lname in needed and value.strip():
            copied.append(f"{canonical_name(lname)}: {value.strip()}")
            if lname != "via":
                needed.discard(lname)
    if needed - {"via"} or not any(c.lower().startswith("via:") for c in copied):
        return None
    reason = "".join(ch for ch in problem if ch.isprintable())[:100]
    text = f"SIP/2.0 400 Bad Request ({reason})\r\n" + "\r\n".join(copied)
    return (text + "\r\nContent-Length: 0\r\n\r\n").encode("utf-8", "replace")
