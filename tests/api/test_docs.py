"""/docs works without internet, "Authorize" takes a bearer token, and the OpenAPI document
describes what the API really answers and takes."""

from __future__ import annotations

import json
import re

from tests.conftest import RunningServer


def test_docs_are_served_by_the_node_itself(server: RunningServer) -> None:
    page = server.client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    # Nothing from another host: a node without internet shows the same page.
    assert all(s.startswith("/") for s in sources), sources
    for source in sources:
        asset = server.client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert "/openapi.json" in page.text
    assert server.client.get("/redoc").status_code == 404  # it would load from a CDN


def test_the_document_declares_the_bearer_scheme_and_no_422(server: RunningServer) -> None:
    doc = server.client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = doc["paths"]
    assert paths["/account/{account_id}/voiceapp"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/SonetelAuth/oauth/token"]["post"]["security"] == []
    assert paths["/healthz"]["get"]["security"] == []
    statuses = {s for ops in paths.values() for op in ops.values() for s in op["responses"]}
    assert "422" not in statuses and "201" not in statuses, statuses
    assert "HTTPValidationError" not in json.dumps(doc)


def test_the_document_explains_menu_actions_and_the_simulate_timeline(
    server: RunningServer,
) -> None:
    doc = server.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    action = schemas["ActionIn"]
    for word in ("`other`", "`disconnect`", "`csg`", "`prompt`", "`null`"):
        assert word in action["description"], word
    simulate = schemas["SimulateIn"]["properties"]["timeline"]
    assert "during" in simulate["description"] and "oneOf" in simulate
    assert "$ref" not in json.dumps(simulate).replace("#/components/", "")
