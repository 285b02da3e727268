"""GET /globaldata/errors: every error code the API answers with."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openivr.api.docs import Loose, answers
from openivr.api.envelope import success
from openivr.api.errors import ERROR_CODES

router = APIRouter(tags=["globaldata"])


class ErrorOut(Loose):
    """One documented error."""

    code: str | None = None
    method: str | None = None
    resource: str | None = None
    description: str | None = None


@router.get("/globaldata/errors", responses=answers(list[ErrorOut]))
async def list_errors(request: Request, resource: str | None = None) -> JSONResponse:
    """The error codes, optionally only those a resource can answer with."""
    rows = []
    for err in ERROR_CODES:
        if resource and "*" not in err.resources and resource not in err.resources:
            continue
        rows.append(
            {
                "method": ",".join(err.methods),
                "resource": resource or ",".join(err.resources),
                "code": err.code,
                "http_status": err.status,
                "description": err.description,
                "response": {"code": err.code, "detail": "<what went wrong, naming the field>"},
            }
        )
    return success(request, rows, resource="globaldata")
