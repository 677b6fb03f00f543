"""The API documentation works offline: /docs and /redoc reference only this server's URLs and
their assets are served; the OpenAPI document publishes the CDR's JSON Schema (TS 32.298)."""

from __future__ import annotations

import re
from typing import Any

import httpx

REFERENCE = re.compile(
    r"""(?:src|href)="([^"]+)"|(?:url|openapi_url|spec-url)\s*[:=]\s*['"]([^'"]+)"""
)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def _local_references(page: str) -> list[str]:
    assert not re.search(r"(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page), "external reference"
    urls = [a or b for a, b in REFERENCE.findall(page)]
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    return urls


def test_docs_and_redoc_load_only_local_assets(stack: Any) -> None:
    anonymous = httpx.Client(base_url=stack.base_url, timeout=15)
    seen: set[str] = set()
    for page in ("/docs", "/redoc"):
        r = anonymous.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        seen.update(_local_references(r.text))
    assets = {u for u in seen if u.startswith("/docs/static/")}
    assert {a.rsplit(".", 1)[1] for a in assets} == {"js", "css", "png"}
    assert "/openapi.json" in seen
    for url in sorted(assets):
        r = anonymous.get(url)
        assert r.status_code == 200, url
        ext = url[url.rfind(".") :]
        assert CONTENT_TYPES[ext] in r.headers["content-type"], (url, r.headers["content-type"])
        assert len(r.content) > 1000
    swagger = anonymous.get("/docs/static/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in swagger
    assert anonymous.get("/docs/static/nope.js").status_code == 404
    anonymous.close()


def test_openapi_publishes_the_cdr_schema(stack: Any) -> None:
    doc = httpx.get(f"{stack.base_url}/openapi.json", timeout=15).json()
    schemas = doc["components"]["schemas"]
    cdr = schemas["ChargingDataRecord"]
    for field in (
        "recordType",
        "servedSubscriptionIds",
        "iMS-Charging-Identifier",
        "recordOpeningTime",
        "causeForRecordClosing",
        "listOfServiceData",
        "localRecordSequenceNumber",
    ):
        assert field in cdr["properties"], field
    assert {"ratingGroup", "dataVolumeUplink", "timeOfFirstUsage"} <= set(
        schemas["ServiceData"]["properties"]
    )
    assert schemas["CdrOut"]["properties"]["record"] == {
        "$ref": "#/components/schemas/ChargingDataRecord"
    }
