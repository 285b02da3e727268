"""OpenAPI descriptions of the envelope, so /docs and schemathesis see real shapes."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from openivr.api.envelope import Failed

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """The success envelope around a payload."""

    resource: str
    status: str
    response: T


class Loose(BaseModel):
    """A response object whose fields may be trimmed by ?fields=."""

    model_config = ConfigDict(extra="allow")


def answers(model: Any, *errors: int) -> dict[int | str, dict[str, Any]]:
    """The documented responses of a route: its success model (HTTP 200, creates included, as
    the hosted API answers) and failures."""
    doc: dict[int | str, dict[str, Any]] = {200: {"model": Envelope[model]}}  # type: ignore[valid-type]
    for status in sorted({400, 401, 403, 404, *errors}):
        doc[status] = {"model": Failed}
    return doc
