"""LeanRoute (api/lean.py): the same answers, errors and OpenAPI as FastAPI's own route for the
shapes it accepts, and a refusal at build time for any other signature."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.lean import LeanRoute


class Out(BaseModel):
    name: str
    caller: str


async def caller(request: Request) -> str:
    token = request.headers.get("authorization", "")
    if token != "Bearer good":
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    return "alice"


async def lookup(name: str, request: Request, who: Annotated[str, Depends(caller)]) -> Response:
    if name == "nobody":
        raise HTTPException(404, f"no account {name!r}")
    body = Out(name=name, caller=who).model_dump_json().encode()
    return Response(body, media_type="application/json")


def app_with(route_class: type | None) -> FastAPI:
    router = APIRouter(prefix="/api")
    router.add_api_route(
        "/things/{name}",
        lookup,
        methods=["GET"],
        response_model=Out,
        route_class_override=route_class,
    )
    app = FastAPI()
    app.include_router(router)
    return app


def test_same_answers_errors_and_openapi_as_fastapi() -> None:
    lean, plain = TestClient(app_with(LeanRoute)), TestClient(app_with(None))
    for path, headers in (
        ("/api/things/b%C3%A4r", {"Authorization": "Bearer good"}),
        ("/api/things/nobody", {"Authorization": "Bearer good"}),
        ("/api/things/x", {}),
        ("/api/things/x", {"Authorization": "Bearer bad"}),
    ):
        a, b = lean.get(path, headers=headers), plain.get(path, headers=headers)
        assert (a.status_code, a.json(), a.headers.get("www-authenticate")) == (
            b.status_code,
            b.json(),
            b.headers.get("www-authenticate"),
        )
    assert lean.get("/api/things/b%C3%A4r", headers={"Authorization": "Bearer good"}).json() == {
        "name": "bär",
        "caller": "alice",
    }
    assert lean.app.openapi() == plain.app.openapi()  # type: ignore[attr-defined]


def test_dependency_overrides_are_honoured() -> None:
    app = app_with(LeanRoute)

    async def bob() -> str:
        return "bob"

    app.dependency_overrides[caller] = bob
    answer = TestClient(app).get("/api/things/x")
    assert answer.status_code == 200 and answer.json()["caller"] == "bob"


def test_other_signatures_are_refused_when_built() -> None:
    async def with_query(name: str, limit: int = 5) -> Response:
        return Response()

    async def with_int_path(name: int) -> Response:
        return Response()

    def blocking(name: str) -> Response:
        return Response()

    async def needs_more(request: Request, who: Annotated[str, Depends(caller)]) -> str:
        return who

    async def nested(name: str, who: Annotated[str, Depends(needs_more)]) -> Response:
        return Response()

    for endpoint in (with_query, with_int_path, blocking, nested):
        router = APIRouter()
        with pytest.raises(TypeError, match="LeanRoute cannot serve"):
            router.add_api_route(
                "/{name}", endpoint, methods=["GET"], route_class_override=LeanRoute
            )
