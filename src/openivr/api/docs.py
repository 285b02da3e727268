"""OpenAPI descriptions of the envelope, so /docs and schemathesis see real shapes."""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict
from swagger_ui_bundle import swagger_ui_path

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


# Operations that answer without a token (the rest take `Authorization: Bearer <token>`).
PUBLIC_PATHS = ("/oauth/", "/SonetelAuth/", "/healthz", "/globaldata/", "/audio/")
BEARER = "bearerAuth"


def _with_bearer_and_real_statuses(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the bearer scheme declared (so /docs can "Authorize") and
    FastAPI's 422 answers removed: request validation here answers 400 in the failed envelope."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /SonetelAuth/oauth/token (grant_type=password)",
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            operation.get("responses", {}).pop("422", None)
            if path.startswith(PUBLIC_PATHS) or path == "/openapi.json":
                operation["security"] = []
            else:
                operation["security"] = [{BEARER: []}]
    schemas = components.get("schemas", {})
    text = json.dumps(document.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
    return document


def install_docs(app: FastAPI) -> None:
    """/docs with Swagger UI served by the node itself (it works without internet), from the
    swagger-ui-bundle-v2 package, against the document with the bearer scheme declared."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_bearer_and_real_statuses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
