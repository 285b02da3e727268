"""Field validation shared by every resource: errors that name the field and the reason."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SIP_URI = re.compile(r"^sips?:(?:[^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(?::[0-9]{1,5})?(?:;[^\s]*)?$")
# Control characters (Unicode Cc) and lone surrogates: no name, text or id needs them,
# PostgreSQL refuses U+0000 and neither database can store a lone surrogate. Tab, line feed
# and carriage return are the exception in free text (a TTS text may have lines).
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The one bound of every integer a request may carry (query parameters, body fields): the
# largest integer JSON clients exchange exactly (RFC 8259 section 6), well inside both
# databases' 64-bit integers. Fields with a narrower meaning bound themselves further.
MAX_INT = 2**53 - 1


class FieldError(Exception):
    """A value the user sent that cannot be accepted; names the field and why."""

    def __init__(self, field: str, detail: str, code: str = "invalid_field"):
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.code = code


class Refusal(Exception):
    """A request refused as a whole (unknown id, still in use, stale version): a stable code of
    api/errors.py (not_found, in_use, precondition_failed, ...) and a human detail."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def known_fields(
    body: dict[str, Any],
    writable: tuple[str, ...],
    read_only: tuple[str, ...],
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The writable fields of a body. Fields the resource does not have are refused, all named at
    once; a read-only one a GET returns is accepted when it is unchanged (or on create, or when
    `current` leaves it out: derived values such as signed links), so clients may send back what
    they read."""
    unknown = [name for name in body if name not in writable and name not in read_only]
    if unknown:
        raise FieldError(
            ", ".join(unknown),
            f"unknown field{'s' if len(unknown) > 1 else ''}; the fields are {', '.join(writable)}",
            "invalid_field",
        )
    for name, value in body.items():
        if name in writable:
            continue
        if name in read_only and current is not None and name in current:
            if value != current[name]:
                raise FieldError(name, "is read-only and cannot change", "immutable_field")
    return {name: value for name, value in body.items() if name in writable}


def whole_number(field: str, value: Any, low: int, high: int) -> int:
    """An integer within [low, high] (a JSON number; never a boolean or a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(field, f"must be a whole number from {low} to {high}")
    if value != value or not low <= value <= high or int(value) != value:
        raise FieldError(field, f"must be a whole number from {low} to {high}")
    return int(value)


def control_character(value: str, multiline: bool = True) -> str | None:
    """Why a string cannot be accepted as text (a control character or a lone surrogate), or
    None; `multiline` allows tab, line feed and carriage return."""
    found = (_CONTROL_IN_TEXT if multiline else _CONTROL_IN_NAME).search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return f"must be valid Unicode (a lone surrogate U+{ord(char):04X} at {found.start()})"
    return f"must not contain control characters (U+{ord(char):04X} at {found.start()})"


def yes_no(field: str, value: Any) -> str:
    """A yes/no flag; booleans are accepted and written as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return value.strip().lower()
    raise FieldError(field, f"must be 'yes' or 'no', got {value!r}")


def text(field: str, value: Any, max_len: int = 200, allow_empty: bool = False) -> str:
    """A trimmed string of bounded length."""
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    refusal = control_character(value)
    if refusal is not None:
        raise FieldError(field, refusal)
    cleaned: str = value.strip()
    if not cleaned and not allow_empty:
        raise FieldError(field, "must not be empty")
    if len(cleaned) > max_len:
        raise FieldError(field, f"must be at most {max_len} characters")
    return cleaned


def number(field: str, value: Any, low: float, high: float, integer: bool = False) -> float:
    """A number within [low, high]; numeric strings are accepted."""
    if isinstance(value, bool):
        raise FieldError(field, "must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise FieldError(field, f"must be a number, got {value!r}") from None
    if not isinstance(value, int | float):
        raise FieldError(field, f"must be a number, got {type(value).__name__}")
    if value != value or not low <= value <= high:
        raise FieldError(field, f"must be between {low:g} and {high:g}")
    if integer and int(value) != value:
        raise FieldError(field, "must be a whole number")
    return float(value)


def e164(field: str, value: Any) -> str:
    """An E.164 phone number with its leading '+'."""
    if not isinstance(value, str) or not E164.match(value.strip()):
        raise FieldError(field, f"must be an E.164 number like +46812345678, got {value!r}")
    return value.strip()


def email(field: str, value: Any) -> str:
    """An e-mail address, lower-cased."""
    if not isinstance(value, str) or len(value) > 320 or not EMAIL.match(value.strip()):
        raise FieldError(field, f"must be an e-mail address, got {value!r}")
    return value.strip().lower()


def sip_uri(field: str, value: Any) -> str:
    """A sip: or sips: URI."""
    if not isinstance(value, str) or len(value) > 300 or not SIP_URI.match(value.strip()):
        raise FieldError(field, f"must be a SIP URI like sip:anna@pbx.example.com, got {value!r}")
    return value.strip()


def number_or_sip_address(field: str, value: Any) -> str:
    """An E.164 number, or a SIP address with or without sip: (e.g. an app's sip_address)."""
    text_value = value.strip() if isinstance(value, str) else value
    if isinstance(text_value, str) and text_value.startswith("+"):
        return e164(field, text_value)
    if isinstance(text_value, str) and "@" in text_value and len(text_value) <= 300:
        uri = (
            text_value if text_value.lower().startswith(("sip:", "sips:")) else "sip:" + text_value
        )
        if SIP_URI.match(uri):
            return text_value
    raise FieldError(
        field,
        "must be an E.164 number like +46812345678 or a SIP address like "
        f"VAabc123@openivr.local, got {value!r}",
    )


def timezone(field: str, value: Any) -> str:
    """An IANA time zone name."""
    name = text(field, value, 64)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(field, f"unknown time zone {name!r}") from None
    return name


def expect_object(field: str, value: Any) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise FieldError(field, f"must be an object, got {type(value).__name__}")
    return value
