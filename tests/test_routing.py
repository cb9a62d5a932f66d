"""Routers that cannot forget: every route of the app is a GuardedRoute made by `api_router` and
states its role, and the app refuses to start otherwise."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.auth.service import Principal, Role
from app.deps import CALLER, EditorSession, ViewerSession, get_principal
from app.routing import ROLE_EXTENSION, GuardedRoute, api_router, check_routes_guarded

PUBLIC = {"/healthz", "/readyz"}


def test_every_route_is_guarded_and_states_its_role(app):
    checked = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue  # /openapi.json and the docs pages: Starlette routes of FastAPI's own
        assert isinstance(route, GuardedRoute), f"{context.path}: not made by api_router"
        if context.path in PUBLIC:
            assert route.required_role is None, context.path
        else:
            assert route.required_role in Role, f"{context.path} states no role"
        checked += 1
    assert checked >= 40, checked


def _app_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


def test_startup_refuses_a_router_not_made_by_api_router():
    router = APIRouter(prefix="/api/forgot")

    @router.get("/")
    async def forgot() -> dict:
        return {}

    with pytest.raises(RuntimeError, match="/api/forgot/: make its router with"):
        check_routes_guarded(_app_with(router))


def test_startup_refuses_a_route_that_needs_a_caller_but_states_no_role():
    router = api_router(prefix="/api/roleless", tags=["t"])

    @router.get("/")
    async def roleless(principal: Annotated[Principal, Depends(get_principal)]) -> dict:
        return {}

    with pytest.raises(RuntimeError, match="/api/roleless/ needs a caller but states no role"):
        check_routes_guarded(_app_with(router))


def test_the_session_type_is_the_role_the_route_checks_and_documents():
    router = api_router(prefix="/api/typed", tags=["t"])

    @router.post("/")
    async def typed(session: EditorSession) -> dict:
        return {}

    app = _app_with(router)
    check_routes_guarded(app)
    operation = app.openapi()["paths"]["/api/typed/"]["post"]
    assert operation[ROLE_EXTENSION] == "editor"


def test_startup_refuses_a_role_added_by_include_router():
    """The guard and `x-required-role` read the route's own parameters: a role given at inclusion
    would be checked only after the body was read, and documented nowhere."""
    router = api_router(prefix="/api/included", tags=["t"])

    @router.get("/")
    async def included(session: ViewerSession) -> dict:
        return {}

    app = FastAPI()
    app.include_router(router, dependencies=[Depends(CALLER[Role.admin])])
    with pytest.raises(RuntimeError, match="/api/included/: state its role in its own parameters"):
        check_routes_guarded(app)
