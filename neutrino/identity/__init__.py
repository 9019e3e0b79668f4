"""Identity: who is calling, and what may they do.

neutrino speaks the slice of Keystone v3 that OpenStack clients need to
authenticate (password and token methods, project scope), find the service
catalog, and manage a small set of projects, users and role assignments.

Tokens are Fernet tokens (AES-CBC + HMAC, keys in the state directory): the
token itself carries user id, project id, methods, expiry and audit ids, so
nothing is stored per token and any process holding the keys can read it.
What a token may do is not frozen inside it: roles, and whether the user and
project are still enabled, are read from the database when a token is first
seen and then cached for about a second. Revocation is a row keyed by audit
id (`revoked_tokens`). A token carries its own audit id and, if it was
rescoped, that of the token its chain began with (Keystone's audit chain); it
is dead when either is revoked, so revoking the token a user logged in with
also kills every token rescoped from it.

The cache is what makes validation cheap (a dictionary lookup on a hit). It
bounds staleness rather than tracking every change: writes in this process
clear it at once, and writes by another process (a second API worker) are
seen within `TokenCache.fresh_seconds`.
"""

from neutrino.identity.bootstrap import client_env
from neutrino.identity.catalog import DEFAULT_SERVICES, CatalogService
from neutrino.identity.service import Identity, TokenInfo

__all__ = ["DEFAULT_SERVICES", "CatalogService", "Identity", "TokenInfo", "client_env"]
