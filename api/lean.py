"""A lean FastAPI route for the hottest read: documented like any other (OpenAPI from the
endpoint's signature and ``response_model``), served without FastAPI's generic per-request work.

FastAPI's handler solves the dependency graph for every request (query, header and cookie
parsing, dependency cache keys, an exit stack) and validates and re-serialises the endpoint's
return value: about a fifth of a balance lookup's CPU. :class:`LeanRoute` serves endpoints of a
narrow shape directly: ``str`` path parameters, the ``Request``, and dependencies that are
async functions of the request alone (api/auth.py's role checks); the endpoint returns a
finished :class:`Response`. Any other parameter is refused when the route is built, so the
shortcut can never silently ignore part of a signature. Exceptions take the same way as on
other routes (the app's exception handlers: 401/403/404 JSON reasons, 503), and while the app
has ``dependency_overrides`` (tests) FastAPI's own handler serves the route."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def _refuse(dependant: Dependant, why: str) -> TypeError:
    return TypeError(f"LeanRoute cannot serve {dependant.call!r}: {why}")


def _request_only(dependant: Dependant) -> tuple[str | None, Callable[..., Any], str]:
    """(value name, async call, its request parameter) of a dependency taking only the request."""
    call = dependant.call
    if (
        call is None
        or not inspect.iscoroutinefunction(call)
        or dependant.request_param_name is None
        or dependant.dependencies
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or len(inspect.signature(call).parameters) != 1
    ):
        raise _refuse(dependant, "a dependency must be an async function of the request alone")
    return dependant.name, call, dependant.request_param_name


class LeanRoute(APIRoute):
    """An :class:`APIRoute` whose handler calls the endpoint with its path parameters, request
    and request-only dependencies, and sends the :class:`Response` it returns."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        endpoint = dependant.call
        if endpoint is None or not inspect.iscoroutinefunction(endpoint):
            raise _refuse(dependant, "the endpoint must be an async function")
        if (
            dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.response_param_name
            or dependant.background_tasks_param_name
        ):
            raise _refuse(dependant, "only path parameters, the request and dependencies")
        for field in dependant.path_params:
            if field.field_info.annotation is not str or field.field_info.metadata:
                raise _refuse(dependant, f"path parameter {field.name!r} must be a plain str")
        paths = tuple(field.name for field in dependant.path_params)
        dependencies = tuple(_request_only(d) for d in dependant.dependencies)
        request_name = dependant.request_param_name
        generic = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if getattr(request.app, "dependency_overrides", None):
                return await generic(request)
            # The same dependency functions as FastAPI would call, in declaration order.
            values = {}
            for name, call, param in dependencies:
                value = await call(**{param: request})
                if name is not None:  # a router's ``dependencies=[...]`` have no parameter
                    values[name] = value
            matched = request.path_params
            for name in paths:
                values[name] = matched[name]
            if request_name is not None:
                values[request_name] = request
            response = await endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(f"{endpoint!r} must return a Response on a LeanRoute")
            return response

        return handler
