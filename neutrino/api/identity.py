"""Keystone v3 over HTTP: the routes the app mounts under /identity.

Handlers are plain functions run in the thread pool (they hash passwords and
query the database); each gets a `Call` holding the parsed body and, unless
the route is public, the validated caller. Errors render in Keystone's shape
here, so these routes behave the same whatever else the app registers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api.text import load_json
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.errors import InvalidInput, KeystoneError
from neutrino.identity import Identity, TokenInfo
from neutrino.identity.errors import bad_request, forbidden, not_found, unauthorized
from neutrino.identity.policy import require_admin, require_self_or_admin
from neutrino.identity.service import Ref, Row
from neutrino.identity.tokens import moment

JSON = dict[str, Any]
Handler = Callable[["Call"], Response]

VERSION_ID = "v3.14"
_STR: tuple[type, ...] = (str,)
_STR_OR_NULL: tuple[type, ...] = (str, type(None))
_BOOL: tuple[type, ...] = (bool,)
PROJECT_FIELDS = {"name": _STR, "description": _STR_OR_NULL, "enabled": _BOOL}
USER_FIELDS = {
    "name": _STR,
    "password": _STR_OR_NULL,
    "enabled": _BOOL,
    "description": _STR_OR_NULL,
    "default_project_id": _STR_OR_NULL,
    "email": _STR_OR_NULL,
}
ROLE_FIELDS = {"name": _STR, "description": _STR_OR_NULL}


def keystone_error_response(exc: KeystoneError, auth_uri: str | None = None) -> Response:
    """Keystone's error body; a 401 names where to authenticate, as Keystone does."""
    headers = (
        {"WWW-Authenticate": f'Keystone uri="{auth_uri}"'}
        if exc.status == 401 and auth_uri
        else None
    )
    body = {"error": {"code": exc.status, "title": exc.title, "message": exc.message}}
    return _json(body, exc.status, headers)


def keystone_exception_handler(
    settings: Settings,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """For the app's exception handlers: KeystoneError raised outside these routes."""
    auth_uri = _auth_uri(settings)

    async def handle(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KeystoneError)
        return keystone_error_response(exc, auth_uri)

    return handle


# Keystone's titles of the answers api.middleware gives (Python 3.13 renamed 413's phrase)
TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def render_error(_request: Request, status: int, message: str) -> Response:
    """For api.middleware: refusals and failures on /identity."""
    return keystone_error_response(KeystoneError(status, TITLES[status], message))


def routes(identity: Identity, settings: Settings) -> list[BaseRoute]:
    api = _IdentityApi(identity, settings)
    r = api.route
    return [
        r("/", {"GET": api.versions}, public=True),
        r("/v3", {"GET": api.version}, public=True),
        r("/v3/", {"GET": api.version}, public=True),
        r(
            "/v3/auth/tokens",
            {
                "POST": api.issue_token,
                "GET": api.check_token,
                "HEAD": api.check_token,
                "DELETE": api.revoke_token,
            },
            public={"POST"},
        ),
        r("/v3/auth/projects", {"GET": api.auth_projects}),
        r("/v3/auth/catalog", {"GET": api.auth_catalog}),
        r("/v3/domains", {"GET": api.list_domains}),
        r("/v3/domains/{domain_id}", {"GET": api.show_domain}),
        r("/v3/projects", {"GET": api.list_projects, "POST": api.create_project}),
        r(
            "/v3/projects/{project_id}",
            {"GET": api.show_project, "PATCH": api.update_project, "DELETE": api.delete_project},
        ),
        r(
            "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
            {"PUT": api.grant, "HEAD": api.check_grant, "DELETE": api.ungrant},
        ),
        r("/v3/users", {"GET": api.list_users, "POST": api.create_user}),
        r(
            "/v3/users/{user_id}",
            {"GET": api.show_user, "PATCH": api.update_user, "DELETE": api.delete_user},
        ),
        r("/v3/users/{user_id}/projects", {"GET": api.user_projects}),
        r("/v3/users/{user_id}/password", {"POST": api.change_password}),
        r("/v3/roles", {"GET": api.list_roles, "POST": api.create_role}),
        r(
            "/v3/roles/{role_id}",
            {"GET": api.show_role, "PATCH": api.update_role, "DELETE": api.delete_role},
        ),
        r("/v3/role_assignments", {"GET": api.list_assignments}),
    ]


@dataclass(frozen=True)
class Call:
    request: Request
    body: Any
    ctx: Context | None  # None on public routes
    base: str  # this API's own URL, e.g. http://127.0.0.1:9696/identity

    @property
    def caller(self) -> Context:
        if self.ctx is None:
            raise unauthorized()
        return self.ctx

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def flag(self, name: str) -> bool:
        """Keystone's boolean query parameters: present and not false."""
        value = self.query(name)
        return value is not None and value.lower() not in ("0", "false", "no", "off")

    def link(self, path: str) -> str:
        return f"{self.base}/v3/{path}"


class _IdentityApi:
    def __init__(self, identity: Identity, settings: Settings) -> None:
        self.identity = identity
        self.auth_uri = _auth_uri(settings)

    def route(
        self, path: str, handlers: dict[str, Handler], public: bool | Collection[str] = False
    ) -> Route:
        public_methods = set(handlers) if public is True else set(public or ())

        async def endpoint(request: Request) -> Response:
            try:
                body = await _json_body(request)
                # Starlette answers HEAD on every GET route; without its own handler HEAD is GET.
                handler = handlers.get(request.method) or handlers["GET"]
                return await run_in_threadpool(
                    self._run, handler, request, body, request.method in public_methods
                )
            except KeystoneError as exc:
                return keystone_error_response(exc, self.auth_uri)
            except IntegrityError:
                # A concurrent request stored the same name first.
                return keystone_error_response(
                    KeystoneError(
                        409, "Conflict", "The request conflicts with a concurrent change; retry it."
                    )
                )

        return Route(path, endpoint, methods=list(handlers))

    def _run(self, handler: Handler, request: Request, body: Any, public: bool) -> Response:
        ctx = None
        if not public:
            token = request.headers.get("x-auth-token")
            if not token:
                raise unauthorized()
            ctx = self.identity.validate(token)
        return handler(Call(request, body, ctx, _base_url(request)))

    # -- discovery -----------------------------------------------------------
    def versions(self, call: Call) -> Response:
        return _json({"versions": {"values": [_version(call.base)]}}, 300)

    def version(self, call: Call) -> Response:
        return _json({"version": _version(call.base)})

    # -- tokens --------------------------------------------------------------
    def issue_token(self, call: Call) -> Response:
        auth = _object(call.body, "auth")
        identity = _object(auth, "identity")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods:
            raise bad_request(
                "Invalid input for field 'identity/methods': expected a non-empty list."
            )
        scope = _scope(auth.get("scope"))
        if methods == ["password"]:
            user = _object(_object(identity, "password"), "user")
            password = _string(user, "password")
            token, info = self.identity.issue_for_password(_ref(user, "user"), password, scope)
        elif methods == ["token"]:
            subject = _string(_object(identity, "token"), "id")
            token, info = self.identity.issue_for_token(subject, scope)
        else:
            raise unauthorized("Attempted to authenticate with an unsupported method.")
        view = self._token_view(info, catalog=not call.flag("nocatalog"))
        return _json({"token": view}, 201, {"X-Subject-Token": token})

    def check_token(self, call: Call) -> Response:
        subject, info = self._subject(call, "validate_token")
        if call.request.method == "HEAD":
            return Response(status_code=200, headers={"X-Subject-Token": subject})
        view = self._token_view(info, catalog=not call.flag("nocatalog"))
        return _json({"token": view}, 200, {"X-Subject-Token": subject})

    def revoke_token(self, call: Call) -> Response:
        subject, _info = self._subject(call, "revoke_token")
        self.identity.revoke(subject)
        return Response(status_code=204)

    def _subject(self, call: Call, action: str) -> tuple[str, TokenInfo]:
        """The token named by X-Subject-Token, which its owner or an admin may see."""
        subject = call.request.headers.get("x-subject-token")
        if not subject:
            raise bad_request("The X-Subject-Token header is required.")
        try:
            info = self.identity.inspect(subject)
        except KeystoneError as exc:
            raise not_found("token", subject) from exc
        require_self_or_admin(call.caller, action, info.user["id"])
        return subject, info

    def _token_view(self, info: TokenInfo, catalog: bool) -> JSON:
        payload = info.payload
        view: JSON = {
            "methods": list(payload.methods),
            "user": {**_principal_view(info.user), "password_expires_at": None},
            "audit_ids": list(payload.audit_ids),
            "expires_at": _timestamp(payload.expires_at),
            "issued_at": _timestamp(payload.issued_at),
        }
        if info.project is not None:
            view["project"] = _principal_view(info.project)
            view["is_domain"] = False
            view["roles"] = [{"id": role["id"], "name": role["name"]} for role in info.roles]
            if catalog:
                view["catalog"] = self.identity.catalog
        return view

    def auth_projects(self, call: Call) -> Response:
        rows = self.identity.user_projects(call.caller.user_id)
        return _collection(call, "projects", [_project_view(call, row) for row in rows])

    def auth_catalog(self, call: Call) -> Response:
        if call.caller.project_id is None:
            raise KeystoneError(
                403, "Forbidden", "A project-scoped token is required to produce a service catalog."
            )
        return _json({"catalog": self.identity.catalog, "links": _links(call)})

    # -- domains -------------------------------------------------------------
    def list_domains(self, call: Call) -> Response:
        rows = self.identity.list_domains(name=call.query("name"), enabled=_enabled_filter(call))
        return _collection(call, "domains", [_domain_view(call, row) for row in rows])

    def show_domain(self, call: Call) -> Response:
        return _json(
            {"domain": _domain_view(call, self.identity.get_domain(call.param("domain_id")))}
        )

    # -- projects ------------------------------------------------------------
    def list_projects(self, call: Call) -> Response:
        require_admin(call.caller, "list_projects")
        rows = self.identity.list_projects(
            name=call.query("name"),
            domain_id=call.query("domain_id"),
            enabled=_enabled_filter(call),
        )
        return _collection(call, "projects", [_project_view(call, row) for row in rows])

    def create_project(self, call: Call) -> Response:
        require_admin(call.caller, "create_project")
        fields = _fields(call.body, "project", {**PROJECT_FIELDS, "domain_id": _STR}, create=True)
        return _json({"project": _project_view(call, self.identity.create_project(**fields))}, 201)

    def show_project(self, call: Call) -> Response:
        project_id, ctx = call.param("project_id"), call.caller
        if not ctx.is_admin and all(
            p["id"] != project_id for p in self.identity.user_projects(ctx.user_id)
        ):
            raise forbidden("identity:get_project")
        return _json({"project": _project_view(call, self.identity.get_project(project_id))})

    def update_project(self, call: Call) -> Response:
        require_admin(call.caller, "update_project")
        changes = _fields(call.body, "project", PROJECT_FIELDS, create=False)
        row = self.identity.update_project(call.param("project_id"), changes)
        return _json({"project": _project_view(call, row)})

    def delete_project(self, call: Call) -> Response:
        require_admin(call.caller, "delete_project")
        self.identity.delete_project(call.param("project_id"))
        return Response(status_code=204)

    # -- users ---------------------------------------------------------------
    def list_users(self, call: Call) -> Response:
        require_admin(call.caller, "list_users")
        rows = self.identity.list_users(
            name=call.query("name"),
            domain_id=call.query("domain_id"),
            enabled=_enabled_filter(call),
        )
        return _collection(call, "users", [_user_view(call, row) for row in rows])

    def create_user(self, call: Call) -> Response:
        require_admin(call.caller, "create_user")
        fields = _fields(call.body, "user", {**USER_FIELDS, "domain_id": _STR}, create=True)
        return _json({"user": _user_view(call, self.identity.create_user(**fields))}, 201)

    def show_user(self, call: Call) -> Response:
        user_id = call.param("user_id")
        require_self_or_admin(call.caller, "get_user", user_id)
        return _json({"user": _user_view(call, self.identity.get_user(user_id))})

    def update_user(self, call: Call) -> Response:
        require_admin(call.caller, "update_user")
        changes = _fields(call.body, "user", USER_FIELDS, create=False)
        return _json(
            {"user": _user_view(call, self.identity.update_user(call.param("user_id"), changes))}
        )

    def delete_user(self, call: Call) -> Response:
        require_admin(call.caller, "delete_user")
        self.identity.delete_user(call.param("user_id"))
        return Response(status_code=204)

    def user_projects(self, call: Call) -> Response:
        user_id = call.param("user_id")
        require_self_or_admin(call.caller, "list_user_projects", user_id)
        self.identity.get_user(user_id)
        rows = self.identity.user_projects(user_id)
        return _collection(call, "projects", [_project_view(call, row) for row in rows])

    def change_password(self, call: Call) -> Response:
        user_id = call.param("user_id")
        if call.caller.user_id != user_id:
            raise forbidden("identity:change_password")
        user = _object(call.body, "user")
        self.identity.change_password(
            user_id, _string(user, "original_password"), _string(user, "password")
        )
        return Response(status_code=204)

    # -- roles ---------------------------------------------------------------
    def list_roles(self, call: Call) -> Response:
        require_admin(call.caller, "list_roles")
        rows = self.identity.list_roles(name=call.query("name"))
        return _collection(call, "roles", [_role_view(call, row) for row in rows])

    def create_role(self, call: Call) -> Response:
        require_admin(call.caller, "create_role")
        fields = _fields(call.body, "role", ROLE_FIELDS, create=True)
        return _json({"role": _role_view(call, self.identity.create_role(**fields))}, 201)

    def show_role(self, call: Call) -> Response:
        require_admin(call.caller, "get_role")
        return _json({"role": _role_view(call, self.identity.get_role(call.param("role_id")))})

    def update_role(self, call: Call) -> Response:
        require_admin(call.caller, "update_role")
        changes = _fields(call.body, "role", ROLE_FIELDS, create=False)
        return _json(
            {"role": _role_view(call, self.identity.update_role(call.param("role_id"), changes))}
        )

    def delete_role(self, call: Call) -> Response:
        require_admin(call.caller, "delete_role")
        self.identity.delete_role(call.param("role_id"))
        return Response(status_code=204)

    # -- role assignments ----------------------------------------------------
    def grant(self, call: Call) -> Response:
        require_admin(call.caller, "create_grant")
        self.identity.grant(*_grant_ids(call))
        return Response(status_code=204)

    def check_grant(self, call: Call) -> Response:
        require_admin(call.caller, "check_grant")
        project_id, user_id, role_id = _grant_ids(call)
        if not self.identity.is_granted(project_id, user_id, role_id):
            raise not_found(
                "role assignment", f"role {role_id} of user {user_id} on project {project_id}"
            )
        return Response(status_code=204)

    def ungrant(self, call: Call) -> Response:
        require_admin(call.caller, "revoke_grant")
        self.identity.ungrant(*_grant_ids(call))
        return Response(status_code=204)

    def list_assignments(self, call: Call) -> Response:
        user_id = call.query("user.id")
        if user_id is None:
            require_admin(call.caller, "list_role_assignments")
        else:
            require_self_or_admin(call.caller, "list_role_assignments", user_id)
        rows = self.identity.list_assignments(
            user_id=user_id,
            project_id=call.query("scope.project.id"),
            role_id=call.query("role.id"),
        )
        names = call.flag("include_names")
        return _collection(
            call, "role_assignments", [_assignment_view(call, row, names) for row in rows]
        )


# -- request parsing -----------------------------------------------------------
async def _json_body(request: Request) -> Any:
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    raw = await request.body()
    if not raw:
        return None
    try:
        return load_json(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request("The request body is not valid JSON.") from exc
    except InvalidInput as refused:
        raise bad_request(refused.msg) from None


def _object(parent: Any, key: str) -> JSON:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise bad_request(f"Invalid input for field '{key}': expected an object.")
    return value


def _string(parent: JSON, key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str):
        raise bad_request(f"Invalid input for field '{key}': expected a string.")
    return value


def _ref(obj: JSON, field: str) -> Ref:
    """A name-or-id reference; a name needs its domain, by id or by name."""
    ident, name = obj.get("id"), obj.get("name")
    if isinstance(ident, str):
        return Ref(id=ident)
    if not isinstance(name, str):
        raise bad_request(f"Invalid input for field '{field}': 'id' or 'name' is required.")
    domain = _object(obj, "domain")
    domain_id, domain_name = domain.get("id"), domain.get("name")
    if not isinstance(domain_id, str) and not isinstance(domain_name, str):
        raise bad_request(f"Invalid input for field '{field}/domain': 'id' or 'name' is required.")
    return Ref(
        name=name,
        domain=Ref(
            id=domain_id if isinstance(domain_id, str) else None,
            name=domain_name if isinstance(domain_name, str) else None,
        ),
    )


def _scope(value: Any) -> Ref | None:
    if value is None or value == "unscoped":
        return None
    if isinstance(value, dict) and isinstance(value.get("project"), dict):
        return _ref(value["project"], "scope/project")
    if isinstance(value, dict) and ("domain" in value or "system" in value):
        # No domain or system role assignments exist here, as in a Keystone that has granted none.
        raise unauthorized("Only project-scoped and unscoped tokens are supported.")
    raise bad_request("Invalid input for field 'scope': expected a project.")


def _fields(body: Any, key: str, spec: dict[str, tuple[type, ...]], *, create: bool) -> JSON:
    """The known fields of `body[key]`, type-checked; unknown ones are ignored as Keystone does."""
    obj = _object(body, key)
    if not create and "domain_id" in obj:
        raise bad_request("Cannot change Domain ID.")
    fields: JSON = {}
    for name, types in spec.items():
        if name in obj:
            if not isinstance(obj[name], types):
                raise bad_request(
                    f"Invalid input for field '{name}': {obj[name]!r} is not of type "
                    f"{' or '.join(t.__name__ for t in types)}."
                )
            fields[name] = obj[name]
    if fields.get("description", "") is None:
        fields["description"] = ""
    if create and "name" not in fields:
        raise bad_request(f"Invalid input for field '{key}': 'name' is a required property.")
    if "name" in fields and not 0 < len(fields["name"].strip()) <= 255:
        raise bad_request("Invalid input for field 'name': must be 1 to 255 characters, not blank.")
    return fields


def _enabled_filter(call: Call) -> bool | None:
    return None if call.query("enabled") is None else call.flag("enabled")


def _grant_ids(call: Call) -> tuple[str, str, str]:
    return call.param("project_id"), call.param("user_id"), call.param("role_id")


# -- responses -------------------------------------------------------------------
def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _auth_uri(settings: Settings) -> str:
    return f"{settings.public_url}/identity"


def _base_url(request: Request) -> str:
    # root_path carries the mount point (/identity) and any proxy prefix before it.
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def _version(base: str) -> JSON:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


def _links(call: Call) -> JSON:
    return {"self": str(call.request.url), "previous": None, "next": None}


def _collection(call: Call, name: str, items: list[JSON]) -> Response:
    return _json({name: items, "links": _links(call)})


def _timestamp(micros: int) -> str:
    return moment(micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _principal_view(row: Row) -> JSON:
    return {
        "id": row["id"],
        "name": row["name"],
        "domain": {"id": row["domain_id"], "name": row["domain_name"]},
    }


def _domain_view(call: Call, row: Row) -> JSON:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "enabled": row["enabled"],
        "tags": [],
        "options": {},
        "links": {"self": call.link(f"domains/{row['id']}")},
    }


def _project_view(call: Call, row: Row) -> JSON:
    return {
        "id": row["id"],
        "name": row["name"],
        "domain_id": row["domain_id"],
        "description": row["description"],
        "enabled": row["enabled"],
        "parent_id": row["domain_id"],
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": call.link(f"projects/{row['id']}")},
    }


def _user_view(call: Call, row: Row) -> JSON:
    view: JSON = {
        "id": row["id"],
        "name": row["name"],
        "domain_id": row["domain_id"],
        "enabled": row["enabled"],
        "password_expires_at": None,
        "options": {},
        "links": {"self": call.link(f"users/{row['id']}")},
    }
    # Keystone shows these only when set.
    for key in ("default_project_id", "email", "description"):
        if row.get(key):
            view[key] = row[key]
    return view


def _role_view(call: Call, row: Row) -> JSON:
    return {
        "id": row["id"],
        "name": row["name"],
        "domain_id": None,
        "description": row["description"],
        "options": {},
        "links": {"self": call.link(f"roles/{row['id']}")},
    }


def _assignment_view(call: Call, row: Row, names: bool) -> JSON:
    role: JSON = {"id": row["role_id"]}
    user: JSON = {"id": row["user_id"]}
    project: JSON = {"id": row["project_id"]}
    if names:
        role["name"] = row["role_name"]
        user.update(
            name=row["user_name"],
            domain={"id": row["user_domain_id"], "name": row["user_domain_name"]},
        )
        project.update(
            name=row["project_name"],
            domain={"id": row["project_domain_id"], "name": row["project_domain_name"]},
        )
    link = call.link(f"projects/{row['project_id']}/users/{row['user_id']}/roles/{row['role_id']}")
    return {
        "role": role,
        "user": user,
        "scope": {"project": project},
        "links": {"assignment": link},
    }
