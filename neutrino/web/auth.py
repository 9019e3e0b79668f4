"""Sign in with identity credentials, switch project, sign out."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from neutrino.web.clients import Http, api_error
from neutrino.web.sessions import COOKIE
from neutrino.web.ui import PREFIX, Dashboard, Form, open_session, safe_next

LOGIN_CSRF = (
    "neutrino_login_csrf"  # double-submit token: a login form can't be posted from elsewhere
)


def set_cookie(response: Response, name: str, value: str, request: Request) -> None:
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def scoped_login(http: Http, user: str, password: str, project: str) -> httpx.Response | str:
    """A project-scoped token response, or the message to show."""
    response = await http.login(user, password, project or None)
    if response.status_code != 201:
        return (
            "Wrong user name, password or project."
            if response.status_code == 401
            else str(api_error(response))
        )
    if project:
        return response
    listed = await http.send(
        "GET", "/identity/v3/auth/projects", response.headers["X-Subject-Token"]
    )
    projects = listed.json().get("projects", []) if listed.is_success else []
    if not projects:
        return "This user has no role on any project."
    chosen = next((p for p in projects if p["name"] == user), projects[0])
    rescoped = await http.rescope(response.headers["X-Subject-Token"], chosen["id"])
    return rescoped if rescoped.status_code == 201 else str(api_error(rescoped))


def routes(dashboard: Dashboard) -> list[BaseRoute]:
    def login_page(
        request: Request, error: str | None = None, status: int = 200, **values: str
    ) -> Response:
        csrf = secrets.token_urlsafe(32)
        html = dashboard.templates.get_template("login.html").render(
            prefix=PREFIX,
            csrf=csrf,
            error=error,
            next=safe_next(request.query_params.get("next", "")),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        set_cookie(response, LOGIN_CSRF, csrf, request)
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_page(request)
        form = Form(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        expected = request.cookies.get(LOGIN_CSRF)
        if not expected or not secrets.compare_digest(expected, form.get("csrf_token")):
            return login_page(request, "The sign-in form expired; try again.", 403)
        user, project = form.get("username"), form.get("project")
        result = await scoped_login(dashboard.http(request), user, form.get("password"), project)
        if isinstance(result, str):
            return login_page(request, result, 401, username=user, project=project)
        session = await open_session(dashboard.http(request), result)
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        set_cookie(response, COOKIE, dashboard.sessions.add(session), request)
        response.delete_cookie(LOGIN_CSRF, path=PREFIX)
        return response

    async def logout(request: Request) -> Response:
        form = Form(parse_qsl((await request.body()).decode()))
        session = dashboard.session_of(request)
        if session is not None and session.csrf_ok(form.get("csrf_token")):
            dashboard.sessions.remove(request.cookies.get(COOKIE))
            await dashboard.http(request).send(
                "DELETE",
                "/identity/v3/auth/tokens",
                session.token,
                headers={"X-Subject-Token": session.token},
            )
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def switch_project(request: Request) -> Response:
        sid = request.cookies.get(COOKIE)
        session = dashboard.session_of(request)
        form = Form(parse_qsl((await request.body()).decode()))
        if session is None or sid is None or not session.csrf_ok(form.get("csrf_token")):
            return RedirectResponse(PREFIX + "/login", status_code=303)
        http = dashboard.http(request)
        rescoped = await http.rescope(session.token, form.get("project_id"))
        if rescoped.status_code != 201:
            session.notice = f"Could not switch project: {api_error(rescoped)}"
            dashboard.sessions.save(sid, session)
            return RedirectResponse(PREFIX + "/", status_code=303)
        switched = await open_session(http, rescoped, session.projects)
        switched.csrf = session.csrf
        switched.notice = f"Now working in project {switched.project.get('name')}."
        dashboard.sessions.save(sid, switched)
        return RedirectResponse(PREFIX + "/", status_code=303)

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/switch-project", switch_project, methods=["POST"]),
    ]
