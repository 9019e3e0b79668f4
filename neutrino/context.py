"""Who is calling: the identity facts every service and policy check needs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    user_id: str
    project_id: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    token_id: str = ""
    user_name: str = ""
    project_name: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        """Members and admins write; a reader only reads."""
        return self.is_admin or "member" in self.roles

    @classmethod
    def admin(cls) -> Context:
        """The service's own identity (bootstrap, agents' reports, tests)."""
        return cls(user_id="neutrino", project_id=None, roles=frozenset({"admin"}))
