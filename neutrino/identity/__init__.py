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
id (`revoked_tokens`); a token is dead when any of its audit ids is there, so
a token rescoped from a revoked one dies with it.

The cache is what makes validation cheap (a dictionary lookup on a hit). It
bounds staleness rather than tracking every change: writes in this process
clear it at once, and writes by another process (a second API worker) are
seen within `TokenCache.fresh_seconds`.
"""

from neutrino.identity.catalog import CatalogService, DEFAULT_SERVICES
from neutrino.identity.service import Identity, TokenInfo, client_env

__all__ = ["DEFAULT_SERVICES", "CatalogService", "Identity", "TokenInfo", "client_env"]
