"""Roles over every route of the OpenAPI document, beside the isolation test.

Each operation states the least role it needs in `x-required-role`, which the code derives from the
route's session type (app/routing.py): the test reads the expectation from there, so it cannot drift
from the code. Every operation is called with a viewer's, an editor's and an admin's API key and JWT:
a lower role gets a 403, also with a body or path parameter that would fail validation (the role is
checked first), and none of those calls changes anything; the needed role and those above it are
never refused (no 401/403).
"""

import re

from app.auth.service import Role
from app.routing import ROLE_EXTENSION
from tests import test_isolation_all_routes as isolation
from tests.conftest import jwt_headers

tenant_a_objects = isolation.tenant_a_objects  # the same objects of every kind, made by an editor
PUBLIC = isolation.PUBLIC

MARK = "roles-matrix"
DEFINITION = {"match": "all", "conditions": [{"field": "brand", "op": "eq", "value": MARK}]}
# Bodies a caller with the role could send successfully (so a refused one shows it changed nothing).
BODIES = {
    **isolation.BODIES,
    ("POST", "/api/pim/products/"): {"sku": MARK, "name": MARK},
    ("POST", "/api/pim/products/bulk/"): {"products": [{"sku": f"{MARK}-bulk", "name": MARK}]},
    ("POST", "/api/pim/products/search/"): {},
    ("POST", "/api/pim/facets/search/"): {},
    ("PUT", "/api/pim/schema/"): {"fields": [{"name": "brand"}, {"name": "colour"}]},
    ("POST", "/api/pim/categories/"): {"name": MARK},
    ("POST", "/api/pim/views/"): {"name": MARK, "attributes": ["brand"]},
    ("POST", "/api/auth/api-keys/"): {"name": MARK, "role": "admin"},
    ("POST", "/api/product-segments/"): {"name": MARK, "definition": DEFINITION},
    ("POST", "/api/product-segments/preview/"): DEFINITION,
    ("POST", "/api/pim/webhooks/"): {
        "url": "http://127.0.0.1:9/roles",
        "events": ["import.finished"],
    },
}
UPLOAD = ("POST", "/api/pim/import/csv/")
UPLOAD_FILE = {"file": ("roles.csv", f"sku,name\n{MARK}-csv,{MARK}\n".encode(), "text/csv")}
BROKEN_JSON = b'{"name": '
BROKEN_FORM = b"--no-boundary-here\r\n"
INVALID_PATH_PARAMETER = "x" * 65  # neither an object id nor an import job id


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


def _url(path: str, objects: dict, value: str | None = None) -> str:
    for name in re.findall(r"{(\w+)}", path):
        assert name in isolation.PARAMS, f"{path}: add {name} to PARAMS in the isolation test"
        path = path.replace("{" + name + "}", value or str(objects[isolation.PARAMS[name]]))
    return path


async def _call(client, method, path, url, headers, *, body=None, raw=None, form=False):
    if (method, path) == UPLOAD and raw is None:
        return await client.request(method, url, headers=headers, files=UPLOAD_FILE)
    if raw is not None:
        content_type = "multipart/form-data; boundary=b" if form else "application/json"
        return await client.request(
            method, url, headers={**headers, "Content-Type": content_type}, content=raw
        )
    return await client.request(method, url, headers=headers, json=body)


async def _state(client, spec, objects, headers) -> dict:
    """What every read shows an admin: the tenant's state, to compare before and after."""
    state = {}
    for method, path, _ in _operations(spec):
        if method == "GET" and path not in PUBLIC:
            response = await client.get(_url(path, objects), headers=headers)
            shown: object = response.text
            if response.status_code >= 400:  # an error body, less its request's own id
                shown = {k: v for k, v in response.json().items() if k != "request_id"}
            state[path] = (response.status_code, shown)
    return state


async def test_every_route_refuses_lower_roles_and_admits_its_own(
    client, settings, tenant_a_objects
):
    tenant, objects = tenant_a_objects
    spec = (await client.get("/openapi.json")).json()
    credentials = {
        "API key": tenant.headers,
        "JWT": lambda role: jwt_headers(settings, tenant.id, role),
    }
    operations = []
    for method, path, operation in _operations(spec):
        if path in PUBLIC:
            assert ROLE_EXTENSION not in operation, (method, path)
            continue
        assert operation.get(ROLE_EXTENSION) in list(Role), f"{method} {path} states no role"
        has_body = "requestBody" in operation
        assert not has_body or (method, path) in BODIES or (method, path) == UPLOAD, (
            f"add a valid body for {method} {path} to BODIES"
        )
        needed = Role(operation[ROLE_EXTENSION])
        assert ("403" in operation["responses"]) == (needed != Role.viewer), (
            f"{method} {path}: a 403 is documented where a role can be refused, and only there"
        )
        operations.append((method, path, needed, has_body))
    assert len(operations) >= 39, len(operations)

    before = await _state(client, spec, objects, tenant.admin)
    refused = 0
    for method, path, needed, has_body in operations:
        for role in (r for r in Role if r.rank < needed.rank):
            for kind, headers_for in credentials.items():
                headers = headers_for(role.value)
                url = _url(path, objects)
                attempts = [
                    await _call(client, method, path, url, headers, body=BODIES.get((method, path)))
                ]
                if has_body:  # the role is checked before the body is read
                    attempts.append(
                        await _call(
                            client,
                            method,
                            path,
                            url,
                            headers,
                            raw=BROKEN_FORM if (method, path) == UPLOAD else BROKEN_JSON,
                            form=(method, path) == UPLOAD,
                        )
                    )
                if url != path:  # and before the path parameters are validated
                    attempts.append(
                        await _call(
                            client,
                            method,
                            path,
                            _url(path, objects, INVALID_PATH_PARAMETER),
                            headers,
                            body=BODIES.get((method, path)),
                        )
                    )
                for response in attempts:
                    assert response.status_code == 403, (
                        f"{method} {path} as {role} ({kind}): {response.status_code} "
                        f"{response.text[:200]}"
                    )
                    assert response.json()["detail"] == f"This action needs the {needed} role"
                    refused += 1
    assert refused >= 100, refused
    assert await _state(client, spec, objects, tenant.admin) == before, (
        "a refused call changed something"
    )

    for method, path, needed, _ in operations:
        for role in (r for r in Role if r.rank >= needed.rank):
            for kind, headers_for in credentials.items():
                response = await _call(
                    client,
                    method,
                    path,
                    _url(path, objects),
                    headers_for(role.value),
                    body=BODIES.get((method, path)),
                )
                assert response.status_code not in (401, 403), (
                    f"{method} {path} as {role} ({kind}): {response.status_code} "
                    f"{response.text[:200]}"
                )
                assert response.status_code < 500, (method, path, response.text[:200])
