"""Every error the API can answer with, and the exception that carries one."""

from __future__ import annotations

from dataclasses import dataclass

from openivr.apps.validation import Refusal


@dataclass(frozen=True)
class ErrorCode:
    """One documented error: its stable code, HTTP status and meaning."""

    code: str
    status: int
    description: str
    resources: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ("*",)


ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(
        "malformed_json", 400, "The request body is not valid JSON.", methods=("POST", "PUT")
    ),
    ErrorCode(
        "invalid_field", 400, "A field has a value that cannot be accepted; detail names it."
    ),
    ErrorCode("missing_field", 400, "A required field is missing; detail names it."),
    ErrorCode("immutable_field", 400, "A field that cannot change after creation was changed."),
    ErrorCode(
        "unknown_reference",
        400,
        "A field points to a user, app, prompt, team or schedule not in the account.",
    ),
    ErrorCode(
        "invalid_audio", 400, "The uploaded audio is truncated, empty or broken.", ("prompt",)
    ),
    ErrorCode("unauthorized", 401, "The bearer token is missing, malformed, forged or expired."),
    ErrorCode(
        "forbidden", 403, "The token does not allow this (another account, or not an admin)."
    ),
    ErrorCode("bad_signature", 403, "An audio URL's signature is wrong or has expired."),
    ErrorCode("not_found", 404, "No such resource (or not in this account)."),
    ErrorCode("method_not_allowed", 405, "The resource does not support this method."),
    ErrorCode("duplicate", 409, "The value is already taken (e-mail, extension, phone number)."),
    ErrorCode(
        "in_use",
        409,
        "The object is still referenced by menus or phone numbers; detail lists them. "
        "Repeat with ?force=true to clear those references.",
        ("voiceapp", "user", "prompt", "team", "schedule"),
        ("DELETE",),
    ),
    ErrorCode("required", 409, "The object is required by the account and cannot be removed."),
    ErrorCode("precondition_failed", 412, "If-Match does not match the current version (ETag)."),
    ErrorCode("too_large", 413, "The request body or upload is too large.", ("prompt", "*")),
    ErrorCode("unsupported_media_type", 415, "The body or upload has a format not accepted."),
    ErrorCode("internal_error", 500, "An unexpected error; it is logged."),
    ErrorCode(
        "unavailable",
        503,
        "The node cannot place a call now: it is stopping, its --max-calls are taken (a "
        "callback holds two), or it runs no SIP; retry on another node or later.",
        ("call",),
        ("POST",),
    ),
    ErrorCode(
        "busy",
        503,
        "Too many password checks are queued on this node (a flood of logins); retry shortly.",
        ("user",),
    ),
)
STATUS_OF: dict[str, int] = {e.code: e.status for e in ERROR_CODES}


class ApiError(Refusal):
    """An error answer: the failed envelope with a stable code and a human detail."""

    def __init__(self, code: str, detail: str, status: int | None = None):
        super().__init__(code, detail)
        self.status = status if status is not None else STATUS_OF[code]


def status_of(refusal: Refusal) -> int:
    """The HTTP status a refusal is answered with."""
    if isinstance(refusal, ApiError):
        return refusal.status
    return STATUS_OF.get(refusal.code, 400)


def not_found(what: str, ident: str) -> ApiError:
    """The 404 for an id that is unknown or belongs to another account."""
    return ApiError("not_found", f"no {what} {ident!r} in this account")
