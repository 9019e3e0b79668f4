"""The dashboard's request plumbing: sessions, pages, actions, feedback.

A page is `async (ui) -> Response`; an action is `async (ui, form) -> Done`
bound to the page its form lives on. An action that fails with an API error
re-renders that page with the error in words for people next to the form,
every field as it was submitted (status 4xx); one that succeeds redirects
(303) to where it says, or to the dashboard page its form names in `next`,
and the next page shows its notice. An action's URL
also answers GET with its page, so reloading it after a failure shows the
form. Every POST must carry the session's CSRF token.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from neutrino.db import Database
from neutrino.web.clients import Api, ApiError, Http, service_paths
from neutrino.web.messages import for_people
from neutrino.web.sessions import COOKIE, Session, Sessions

PREFIX = "/dashboard"
HERE = Path(__file__).parent


class Form:
    """A submitted urlencoded form (parsed here: no multipart dependency is needed)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return next((v.strip() for k, v in self.pairs if k == name), default)

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for k, v in self.pairs if k == name and v.strip()]

    def flag(self, name: str) -> bool:
        return self.get(name) in ("on", "true", "1", "yes")

    def number(
        self, name: str, label: str, default: int | None = None, between: range | None = None
    ) -> int:
        value = self.get(name)
        if not value and default is not None:
            return default
        if between is not None and not (value.isdigit() and int(value) in between):
            raise ApiError(400, f"{label} must be a number from {between[0]} to {between[-1]}.")
        if not value.isdigit():
            raise ApiError(400, f"{label} must be a number.")
        return int(value)

    def lines(self, name: str) -> list[str]:
        """A textarea's non-empty lines."""
        return [line.strip() for line in self.get(name).splitlines() if line.strip()]

    def records(self, name: str, label: str, *keys: str, required: int = 0) -> list[dict[str, str]]:
        """A textarea of comma-separated lines as objects with `keys` (the first `required` of
        them needed on every line): Kept.lines read back."""
        found = []
        for line in self.lines(name):
            values = [value.strip() for value in line.split(",")]
            if not required <= len(values) <= len(keys) or not all(values[:required]):
                raise ApiError(400, f"{label}: each line is {', '.join(keys)}; '{line}' is not.")
            found.append(dict(zip(keys, values)))
        return found

    def require(self, name: str, label: str) -> str:
        value = self.get(name)
        if not value:
            raise ApiError(400, f"{label} is required.")
        return value


class Kept:
    """A form's fields as its page shows them: as submitted if this form just failed, else the
    page's defaults (`{{ f.value('name') }}`, `{{ f.checked('shared') }}`,
    `{{ f.selected('protocol', 'TCP') }}`). An edit form is kept with the resource it edits
    (`kept('edit-port', port)`): a field without a default of its own shows the resource's
    attribute of the same name."""

    def __init__(self, submitted: Form | None, resource: dict[str, Any] | None = None) -> None:
        self.submitted = submitted
        self.resource = resource or {}

    def current(self, name: str, default: Any) -> Any:
        if default is not None:
            return default
        found = self.resource.get(name)
        return "" if found is None else found

    def value(self, name: str, default: Any = None) -> Any:
        return self.current(name, default) if self.submitted is None else self.submitted.get(name)

    def checked(self, name: str, default: bool | None = None, value: str = "on") -> str:
        chosen = bool(self.current(name, default))
        if self.submitted is not None:
            chosen = value in self.submitted.getlist(name)
        return "checked" if chosen else ""

    def selected(self, name: str, option: str, default: bool | None = None) -> str:
        if self.submitted is not None:
            chosen = option in self.submitted.getlist(name)
        elif default is not None:
            chosen = default
        else:
            found = self.resource.get(name)
            chosen = option in found if isinstance(found, list) else option == found
        return "selected" if chosen else ""

    def lines(self, name: str, *keys: str) -> str:
        """A list attribute as a textarea shows it: an item a line, an object's `keys` separated
        by commas (`f.lines('host_routes', 'destination', 'nexthop')`)."""
        if self.submitted is not None:
            return self.submitted.get(name)
        return "\n".join(
            ", ".join(str(item[key]) for key in keys) if keys else str(item)
            for item in self.resource.get(name) or []
        )


@dataclass
class Done:
    """A successful action: where to go next and what to tell the user."""

    location: str
    notice: str


@dataclass
class Ui:
    request: Request
    session: Session
    api: Api
    dashboard: Dashboard
    errors: dict[str, str] = field(default_factory=dict)
    failed: Form | None = None  # what the form named in `errors` carried, shown again

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        # A page's own refresh in the background must not take the notice meant for the next page.
        notice = None if self.request.headers.get("x-live-refresh") else self.session.pop_notice()
        if notice is not None:
            self.dashboard.save_session(self.request, self.session)
        html = self.dashboard.templates.get_template(template).render(
            session=self.session,
            errors=self.errors,
            kept=self.kept,
            notice=notice,
            path=self.request.url.path,
            prefix=PREFIX,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def kept(self, form: str, resource: dict[str, Any] | None = None) -> Kept:
        """The fields of `form` (editing `resource`). Where a page has that form once per
        resource, each carries the resource's `id`: only the one that failed shows what was
        submitted."""
        failed = self.failed if form in self.errors else None
        if failed is not None and failed.get("id") not in ("", (resource or {}).get("id")):
            failed = None
        return Kept(failed, resource)

    @property
    def project_id(self) -> str:
        return str(self.session.project["id"])

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    async def edit(
        self, service: str, path: str, member: str, wanted: dict[str, Any], what: str = ""
    ) -> str:
        """Update the resource at `path` with those of `wanted`'s attributes that differ from
        what it has: a field left as it was is not sent (the policy may reserve it to
        administrators; Octavia would busy the load balancer for nothing). Says what changed."""
        current = (await self.api.get(service, path))[member]
        changes = {key: value for key, value in wanted.items() if current.get(key) != value}
        if not changes:
            return "Nothing changed."
        await self.api.put(service, path, {member: changes})
        said = ", ".join(key.replace("_", " ") for key in changes)
        return f"Saved the {what or member.replace('_', ' ')}'s {said}."


View = Callable[[Ui], Awaitable[Response]]
Handler = Callable[[Ui, Form], Awaitable[Done]]


def unambiguous(labels: dict[str, str]) -> dict[str, str]:
    """id -> label for a choice, a short id added where labels alone cannot tell two apart."""
    counts = Counter(labels.values())
    return {
        key: f"{label} ({key[:8]})" if counts[label] > 1 else label for key, label in labels.items()
    }


def since(value: str | None) -> str:
    """A timestamp as 'N min ago', the way people read lists."""
    if not value:
        return ""
    try:
        seconds = time.time() - datetime.fromisoformat(value).timestamp()
    except ValueError:
        return value
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


class Dashboard:
    def __init__(self, db: Database) -> None:
        self.sessions = Sessions(db)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["since"] = since
        self._http: Http | None = None

    def http(self, request: Request) -> Http:
        """The in-process client of the whole application this dashboard is mounted in."""
        if self._http is None:
            self._http = Http(request.scope["app"])
        return self._http

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def save_session(self, request: Request, session: Session) -> None:
        self.sessions.save(request.cookies.get(COOKIE, ""), session)

    def ui(self, request: Request) -> Ui | None:
        session = self.session_of(request)
        if session is None:
            return None
        return Ui(request, session, Api(self.http(request), session.token, session.services), self)

    def error_page(self, request: Request, status: int, message: str) -> Response:
        """For api.middleware: what failed or was refused, as a page (never a stack trace)."""
        ui = self.ui(request)
        if ui is not None:
            return ui.render("error.html", status, message=message)
        html = self.templates.get_template("error.html").render(
            session=None, prefix=PREFIX, message=message
        )
        return HTMLResponse(html, status_code=status)

    def shown(self, view: View, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ui = self.ui(request)
            if ui is None:
                return to_login(request)
            if admin and not ui.session.is_admin:
                return ui.render("error.html", 403, message="This page is for administrators.")
            try:
                return await view(ui)
            except ApiError as error:
                return ui.render(
                    "error.html", error.status, message=await for_people(ui.api, error)
                )

        return endpoint

    def page(self, path: str, view: View, admin: bool = False) -> Route:
        return Route(path, self.shown(view, admin), methods=["GET"])

    def action(self, path: str, view: View, handler: Handler, form: str) -> Route:
        """POST `path`: run `handler`; on an API error show `view` with the message at form
        `form`. GET `path` shows `view`."""
        page = self.shown(view)

        async def endpoint(request: Request) -> Response:
            if request.method == "GET":
                return await page(request)
            ui = self.ui(request)
            if ui is None:
                return to_login(request)
            submitted = Form(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            if not ui.session.csrf_ok(
                submitted.get("csrf_token") or request.headers.get("x-csrf-token")
            ):
                return ui.render(
                    "error.html", 403, message="The form expired; reload the page and try again."
                )
            try:
                done = await handler(ui, submitted)
            except ApiError as error:
                ui.errors[form] = await for_people(ui.api, error)
                ui.failed = submitted
                try:
                    shown = await view(ui)
                except ApiError as gone:  # the page's own resource went away meanwhile
                    message = await for_people(ui.api, gone)
                    return ui.render("error.html", gone.status, message=message)
                shown.status_code = error.status if 400 <= error.status < 500 else 409
                return shown
            ui.session.notice = done.notice
            self.save_session(request, ui.session)
            return RedirectResponse(onward(submitted, done), status_code=303)

        return Route(path, endpoint, methods=["GET", "POST"])

    def json_action(
        self, path: str, handler: Callable[[Ui, dict[str, Any]], Awaitable[Any]]
    ) -> Route:
        """POST `path` from the page's script: a JSON object in, JSON out,
        errors as {"error": message}."""

        async def endpoint(request: Request) -> Response:
            ui = self.ui(request)
            if ui is None or not ui.session.csrf_ok(request.headers.get("x-csrf-token")):
                return JSONResponse(
                    {"error": "Sign in again: the session expired."}, status_code=403
                )
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return JSONResponse({"error": "Expected a JSON object."}, status_code=400)
            try:
                return JSONResponse(await handler(ui, body))
            except ApiError as error:
                return JSONResponse(
                    {"error": await for_people(ui.api, error)}, status_code=error.status
                )

        return Route(path, endpoint, methods=["POST"])

    def json(self, path: str, producer: Callable[[Ui], Awaitable[Any]]) -> Route:
        async def endpoint(request: Request) -> Response:
            ui = self.ui(request)
            if ui is None:
                return JSONResponse({"error": "not signed in"}, status_code=401)
            try:
                return JSONResponse(await producer(ui))
            except ApiError as error:
                return JSONResponse({"error": str(error)}, status_code=error.status)

        return Route(path, endpoint, methods=["GET"])


def safe_next(value: str) -> str:
    return value if value.startswith(PREFIX + "/") and not value.startswith("//") else PREFIX + "/"


def onward(form: Form, done: Done) -> str:
    """Where a successful action leads: the page the form names in `next` (the topology's
    create forms lead back to it), if one of this dashboard's, else where the action says."""
    page = form.get("next")
    return page if page and safe_next(page) == page else done.location


def to_login(request: Request) -> Response:
    target = request.url.path if request.method == "GET" else PREFIX + "/"
    return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)


async def open_session(
    http: Http, token_response: httpx.Response, projects: list[dict[str, Any]] | None = None
) -> Session:
    body = token_response.json()["token"]
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    session = Session(
        token=token_response.headers["X-Subject-Token"],
        expires_at=expires,
        user=body["user"],
        project=body.get("project") or {},
        roles=[r["name"] for r in body.get("roles", [])],
        services=service_paths(body.get("catalog", [])),
    )
    if projects is None:
        listed = await http.send("GET", "/identity/v3/auth/projects", session.token)
        projects = (
            sorted(listed.json().get("projects", []), key=lambda p: p["name"])
            if listed.is_success
            else []
        )
    session.projects = projects
    return session
