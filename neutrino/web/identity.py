"""Admin: the identity API's projects and users; create a project, or a user with a password
and a role on a project."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui

ID = "identity"
PROJECT_COLUMNS = [Column("Name"), Column("Description"), Column("Enabled")]
USER_COLUMNS = [Column("Name"), Column("Primary project"), Column("Enabled")]


def routes(d: Dashboard) -> list[BaseRoute]:
    async def identity_page(ui: Ui) -> Response:
        projects, users, roles = await asyncio.gather(
            listed(
                ui,
                "projects",
                Listing(ID, "/v3/projects", "projects", paged=False),
                PROJECT_COLUMNS,
                "projects-",
                deletable="projects",
                empty="No projects.",
            ),
            listed(
                ui,
                "users",
                Listing(ID, "/v3/users", "users", paged=False),
                USER_COLUMNS,
                "users-",
                deletable="users",
                empty="No users.",
            ),
            ui.api.get(ID, "/v3/roles"),
        )
        every = (await ui.api.get(ID, "/v3/projects"))["projects"]
        return ui.render(
            "identity.html",
            projects=projects,
            users=users,
            project_names={p["id"]: p["name"] for p in sorted(every, key=lambda p: p["name"])},
            roles=sorted(r["name"] for r in roles["roles"]),
        )

    async def create_project(ui: Ui, form: Form) -> Done:
        body = {
            "name": form.require("name", "Project name"),
            "description": form.get("description"),
            "domain_id": ui.session.user.get("domain", {}).get("id", "default"),
        }
        project = (await ui.api.post(ID, "/v3/projects", {"project": body}))["project"]
        return Done(f"{PREFIX}/admin/identity", f"Created project {project['name']}.")

    async def create_user(ui: Ui, form: Form) -> Done:
        project_id = form.require("project_id", "Project")
        role_name = form.require("role", "Role")
        roles = (await ui.api.get(ID, "/v3/roles", name=role_name))["roles"]
        if not roles:
            raise ApiError(400, f"There is no role {role_name}.")
        body: dict[str, Any] = {
            "name": form.require("name", "User name"),
            "password": form.require("password", "Password"),
            "default_project_id": project_id,
            "domain_id": ui.session.user.get("domain", {}).get("id", "default"),
        }
        user = (await ui.api.post(ID, "/v3/users", {"user": body}))["user"]
        try:
            await ui.api.put(
                ID, f"/v3/projects/{project_id}/users/{user['id']}/roles/{roles[0]['id']}"
            )
        except ApiError:
            await ui.api.delete(ID, f"/v3/users/{user['id']}")  # a user with its role, or none
            raise
        return Done(
            f"{PREFIX}/admin/identity", f"Created user {user['name']} ({role_name} of the project)."
        )

    return [
        d.page("/admin/identity", identity_page, admin=True),
        d.action("/admin/identity/projects", identity_page, create_project, "create-project"),
        d.action("/admin/identity/users", identity_page, create_user, "create-user"),
    ]
