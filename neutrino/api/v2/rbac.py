"""Request shapes of RBAC policies."""

from __future__ import annotations

import uuid
from typing import Any

from neutrino.api.v2.attrs import REQUIRED, Attr, invalid, project_id, string, uuid_str
from neutrino.services.rbac import EVERYONE, OBJECT_TYPES


def object_type(value: Any) -> str:
    """A registered type, whatever its case and surrounding blanks (convert_valid_object_type)."""
    normalized = value.strip().lower() if isinstance(value, str) else value
    if normalized not in OBJECT_TYPES:
        raise invalid(f"'{value}' is not a valid RBAC object type")
    return normalized


def target_project(value: Any) -> str:
    """A project ID (UUID-like, as Keystone's) or `*` for every project."""
    if value == EVERYONE:
        return value
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise invalid(
            f"'{value}' is not a valid target project ID; expected a UUID or '*'"
        ) from None
    return value


RBAC_POLICY = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "object_type": Attr(object_type, default=REQUIRED, sort=True),
    "object_id": Attr(uuid_str(), default=REQUIRED, sort=True),
    "action": Attr(string(255), default=REQUIRED, sort=True),
    "target_tenant": Attr(target_project, default=REQUIRED, put=True, sort=True),
    "project_id": Attr(project_id, sort=True),
    "tenant_id": Attr(project_id, sort=True),
}
