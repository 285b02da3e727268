"""The response envelope, partial responses (?fields=), the resource names of paths and the
API's date format."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

RESOURCES = (
    "call-recording",
    "voicemail",
    "call",
    "security-event",
    "simulate",
    "validate",
    "graph",
    "prompt",
    "voiceapp",
    "user",
    "phonenumbersubscription",
    "team",
    "schedule",
    "tts",
    "errors",
    "account",
    "oauth",
)
# Words of ?fields= that add details to the whole objects instead of selecting fields, per
# resource: the hosted API's `GET .../prompt?fields=message` answers whole prompts with their
# message details (OpenIVR's prompts always carry them); a call recording's download link and
# call details are added the same way.
ADDING_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt": ("message",),
    "call_recording": ("file_access_details", "voice_call_details"),
}


class FailedBody(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable error code, listed by GET /globaldata/errors")
    detail: str = Field(description="Human-readable reason naming the field")


class Failed(BaseModel):
    """The envelope of a failed request."""

    resource: str
    status: str = Field(description="Always 'failed'")
    response: FailedBody


def format_date(value: datetime) -> str:
    """The API's date format: YYYYMMDDTHH:MM:SSZ."""
    return value.strftime("%Y%m%dT%H:%M:%SZ")


def resource_of(path: str) -> str:
    """The resource a request path is about, e.g. 'prompt' for .../voiceapp/X/prompt/Y."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["tts"]:
        return "tts"  # /tts/prompt/... is about speech, not prompts
    for part in reversed(parts):
        if part in RESOURCES:
            return "globaldata" if part == "errors" else part.replace("-", "_")
    return parts[0] if parts else "root"


def _select(item: Any, wanted: list[str]) -> Any:
    if not isinstance(item, dict):
        return item
    return {k: item[k] for k in wanted if k in item}


def partial(payload: Any, fields: str | None, resource: str = "") -> Any:
    """Keep only the requested fields of an object or of each object of a list."""
    if not fields:
        return payload
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    if not wanted or set(wanted) & set(ADDING_FIELDS.get(resource, ())):
        return payload
    if isinstance(payload, list):
        return [_select(item, wanted) for item in payload]
    return _select(payload, wanted)


def success(
    request: Request,
    payload: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    resource: str | None = None,
) -> JSONResponse:
    """The success envelope, with ?fields= applied."""
    resource = resource or resource_of(request.url.path)
    body = {
        "resource": resource,
        "status": "success",
        "response": partial(payload, request.query_params.get("fields"), resource),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def success_rendered(
    request: Request, payload_json: bytes, headers: dict[str, str] | None = None
) -> Response:
    """The success envelope around a payload already rendered as JSON (no ?fields=)."""
    resource = json.dumps(resource_of(request.url.path), ensure_ascii=False).encode("utf-8")
    body = b'{"resource":' + resource + b',"status":"success","response":' + payload_json + b"}"
    return Response(body, media_type="application/json", headers=headers)


def failure(path: str, code: str, detail: str, status: int) -> JSONResponse:
    """The failed envelope with the right HTTP status."""
    body = {
        "resource": resource_of(path),
        "status": "failed",
        "response": {"code": code, "detail": detail},
    }
    return JSONResponse(body, status_code=status)
