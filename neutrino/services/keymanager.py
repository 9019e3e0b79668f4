"""The key manager: Barbican's v1 secrets, containers of secrets, their ACLs and consumers.

What Octavia's users do with Barbican, done the way Barbican does it, so that python-barbicanclient
and `openstack secret ...` work unchanged and a TERMINATED_HTTPS listener can name a certificate:

- A secret is metadata plus at most one payload, given on create (JSON, text as it is, binary as
  base64) or later by one PUT of the raw bytes; it is read back with the Accept type asked for.
- A container names secrets by role: `certificate` (certificate, private_key,
  private_key_passphrase, intermediates), `rsa` (public_key, private_key,
  private_key_passphrase) or `generic` (any names). Services register as its consumers.
- Who may do what is Barbican's default policy (barbican/common/policies): a project's `admin`
  does everything to its objects; a `member` reads and writes what it created, and what others
  of its project created unless its ACL took project access away; users named in an object's
  `read` ACL read it (and decrypt it) from any project. Creating and listing needs `member`.
  Barbican finds an object first and then checks the caller: another project's secret is a 403,
  a missing one a 404.
- Payloads are stored sealed (AES-256-GCM, the secret's id as associated data, so a sealed
  payload moved to another row does not open), with a key made on first start in the state
  directory, beside the identity service's Fernet keys.

Errors carry Barbican's status and words; api/keymanager renders them as Barbican does,
`{"code", "title", "description"}`.

`KeyManager.certificate_bundle` is what TLS termination reads: the certificate, private key
(decrypted with its passphrase) and intermediates of a certificate container or of a PKCS12
secret, as the caller may read them.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from sqlalchemy import Connection, Row, Table, and_, delete, func, insert, or_, select, update

from neutrino.api.text import REFUSAL, load_json
from neutrino.context import Context
from neutrino.db import Database
from neutrino.db.schema import (
    km_container_acls,
    km_container_consumers,
    km_container_secrets,
    km_containers,
    km_secret_acls,
    km_secrets,
)
from neutrino.errors import InvalidInput
from neutrino.identity.files import write_private
from neutrino.services.refusals import Conflict, Forbidden, Invalid, NotFound, Refusal

KEY_FILE = "keymanager.key"
Pairs = list[tuple[str, str]]  # a query string's items, in order
MAX_SECRET_BYTES = 10_000  # Barbican's max_allowed_secret_in_bytes
DEFAULT_LIMIT, MAX_LIMIT = 10, 100  # Barbican's default_limit_paging, max_limit_paging
SECRET_TYPES = ["symmetric", "passphrase", "private", "public", "certificate", "opaque"]
CONTAINER_TYPES = ["generic", "rsa", "certificate"]
PLAIN_TEXT = ["text/plain", "text/plain;charset=utf-8", "text/plain; charset=utf-8"]
BINARY = ["application/octet-stream", "application/pkcs8"]
SUPPORTED = PLAIN_TEXT + BINARY
_REF = re.compile(r"/v1/(secrets|containers)/([^/?#]+)/?$")


# -- errors ------------------------------------------------------------------------------------
class NotAcceptable(Refusal):
    status = 406


class TooLarge(Refusal):
    status = 413


class UnsupportedMediaType(Refusal):
    status = 415


class UnreadableCertificate(Refusal):
    """What a ref names holds no certificate and key that TLS could use."""

    status = 400


def refused(operation: str) -> Forbidden:
    return Forbidden(
        f"{operation} attempt not allowed - please review your user/project privileges"
    )


def issue(operation: str, reason: str, kind: type[Refusal] = Invalid) -> Refusal:
    """A refusal in the handler's own words (Barbican's generate_safe_exception_message)."""
    return kind(f"{operation} issue seen - {reason}.")


def invalid_object(schema: str, reason: str, prop: str | None) -> Invalid:
    return Invalid(
        f"Provided object does not match schema '{schema}': {reason}. Invalid property: '{prop}'"
    )


# -- the payload at rest -----------------------------------------------------------------------
class Sealer:
    """AES-256-GCM with one key; a sealed payload is nonce + ciphertext + tag."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> Sealer:
        """The key of this state directory, made on first start (one winner among processes)."""
        path = state_dir / KEY_FILE
        write_private(path, base64.b64encode(AESGCM.generate_key(bit_length=256)), exclusive=True)
        return cls(base64.b64decode(path.read_bytes().strip()))

    def seal(self, secret_id: str, payload: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, payload, secret_id.encode())

    def open(self, secret_id: str, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], secret_id.encode())
        except InvalidTag:
            raise RuntimeError(f"the payload of secret {secret_id} does not open") from None


# -- requests' shapes: Barbican's JSON schemas, checked with jsonschema's words ------------------
Schema = Mapping[str, Any]
JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def schema_errors(
    value: Any, schema: Schema, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(message, schema path) of each way `value` breaks `schema`, as jsonschema words them."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(JSON_TYPES[name](value) for name in names):
            yield f"{value!r} is not of type {', '.join(repr(n) for n in names)}", (*path, "type")
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{value!r} is not one of {schema['enum']!r}", (*path, "enum")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            yield f"{value!r} is too long", (*path, "maxLength")
        if len(value) < schema.get("minLength", 0):
            yield f"{value!r} should be non-empty", (*path, "minLength")
    if JSON_TYPES["integer"](value):
        if value < schema.get("minimum", value):
            yield (
                f"{value!r} is less than the minimum of {schema['minimum']!r}",
                (
                    *path,
                    "minimum",
                ),
            )
        if value > schema.get("maximum", value):
            yield (
                f"{value!r} is greater than the maximum of {schema['maximum']!r}",
                (
                    *path,
                    "maximum",
                ),
            )
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                yield f"{name!r} is a required property", (*path, "required")
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in properties]
            if extra:
                listed = ", ".join(repr(k) for k in extra)
                verb = "was" if len(extra) == 1 else "were"
                yield (
                    f"Additional properties are not allowed ({listed} {verb} unexpected)",
                    (*path, "additionalProperties"),
                )
        for name, sub in properties.items():
            if name in value:
                yield from schema_errors(value[name], sub, (*path, "properties", name))
    if isinstance(value, list) and "items" in schema:
        for item in value:
            yield from schema_errors(item, schema["items"], (*path, "items"))


def check_schema(value: Any, schema: Schema, name: str) -> None:
    for message, path in schema_errors(value, schema):
        # Barbican names the property as the second step of the schema path.
        raise invalid_object(name, message, path[1] if len(path) > 1 else None)


SECRET_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"], "maxLength": 255},
        "algorithm": {"type": "string", "maxLength": 255},
        "mode": {"type": "string", "maxLength": 255},
        "bit_length": {"type": "integer", "minimum": 1, "maximum": 32767},
        "expiration": {"type": "string", "maxLength": 255},
        "payload": {"type": "string"},
        "secret_type": {"type": "string", "maxLength": 80, "enum": SECRET_TYPES},
        "payload_content_type": {"type": ["string", "null"], "maxLength": 255},
        "payload_content_encoding": {"type": "string", "maxLength": 255, "enum": ["base64"]},
        "transport_key_needed": {"type": "string", "enum": ["true", "false"]},
        "transport_key_id": {"type": "string"},
    },
}
CONTAINER_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"], "maxLength": 255},
        "type": {"type": "string", "enum": CONTAINER_TYPES},
        "secret_refs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["secret_ref"],
                "properties": {
                    "name": {"type": ["string", "null"], "maxLength": 255},
                    "secret_ref": {"type": "string", "minLength": 1},
                },
            },
        },
    },
    "required": ["type"],
}
ACL_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "read": {
            "type": "object",
            "properties": {
                "users": {"type": "array", "items": {"type": "string", "maxLength": 255}},
                "project-access": {"type": "boolean"},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
CONSUMER_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "URL": {"type": "string", "maxLength": 255, "minLength": 1},
        "name": {"type": "string", "maxLength": 36, "minLength": 1},
    },
    "required": ["name", "URL"],
}
# Names a typed container's secrets go by: (required, optional, refusal, minimum's refusal).
CONTAINER_NAMES = {
    "rsa": (
        {"public_key", "private_key"},
        {"private_key_passphrase"},
        (
            "only 'private_key', 'public_key' and 'private_key_passphrase' reference names are "
            "allowed for RSA type"
        ),
        "The minimum required reference names are 'public_key' and'private_key' for RSA type",
    ),
    "certificate": (
        {"certificate"},
        {"private_key", "private_key_passphrase", "intermediates"},
        (
            "only 'private_key', 'certificate' , 'private_key_passphrase',  or 'intermediates' "
            "reference names are allowed for Certificate type"
        ),
        "The minimum required reference name is 'certificate' for Certificate type",
    ),
}


def strip_strings(value: Any) -> Any:
    """Barbican trims every string of a request body, at any depth (in place, without
    recursion: JSON may nest deeper than Python's stack)."""
    pending = [value]
    while pending:
        item = pending.pop()
        entries = item.items() if isinstance(item, dict) else enumerate(item)
        for key, inner in list(entries):
            if isinstance(inner, str):
                item[key] = inner.strip()
            elif isinstance(inner, dict | list):
                pending.append(inner)
    return value


@dataclass(frozen=True)
class JsonBody:
    """A request's body as Barbican's load_body takes it, read only once the caller may act:
    JSON (else 415), parsed (else 400), every string trimmed."""

    content_type: str | None
    raw: bytes

    def load(self) -> Any:
        if self.content_type != "application/json":
            raise UnsupportedMediaType(
                "Unexpected content type. Expected content types are: ['application/json']"
            )
        try:
            value = load_json(self.raw)
        except orjson.JSONDecodeError:
            raise Invalid("Malformed JSON") from None
        except InvalidInput:
            raise Invalid(f"Malformed JSON: {REFUSAL}") from None
        return strip_strings(value) if isinstance(value, dict | list) else value


def normalize_content_type(mime: str) -> str:
    """Barbican's mime_types.normalize_content_type: `text/plain; charset=utf-8` is text/plain."""
    parts = [p.strip() for p in mime.split(";")]
    if len(parts) > 1:
        if "=" not in parts[1].lower():
            return mime
        if parts[1].lower().split("=")[1].strip() != "utf-8":
            return mime
    base = parts[0].lower()
    return base if base in SUPPORTED else mime


def parse_time(text: str) -> datetime:
    """An ISO 8601 moment as a naive UTC datetime (oslo's parse_isotime + normalize_time)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text, version=4)
    except ValueError:
        return False
    return True


def id_in_ref(ref: str) -> str:
    """The id a ref ends with, as Barbican takes it (a trailing slash allowed)."""
    return ref.rsplit("/", 2)[1] if ref.endswith("/") else ref.rsplit("/", 1)[-1]


# -- who may do what: Barbican's default policy ---------------------------------------------------
def _project_admin(ctx: Context, row: Row) -> bool:
    return "admin" in ctx.roles and ctx.project_id == row.project_id


def _member_with_access(ctx: Context, row: Row, acl: Row | None) -> bool:
    """A member of the object's project that created it, or sees its project's objects."""
    if "member" not in ctx.roles or ctx.project_id != row.project_id:
        return False
    return ctx.user_id == row.creator_id or acl is None or acl.project_access


def _acl_reader(ctx: Context, acl: Row | None) -> bool:
    return acl is not None and ctx.user_id in acl.users


def may_change(ctx: Context, row: Row, acl: Row | None) -> bool:
    """secret:put, container:delete, the ACLs' rules."""
    return _project_admin(ctx, row) or _member_with_access(ctx, row, acl)


def may_read(ctx: Context, row: Row, acl: Row | None) -> bool:
    """secret:decrypt, container:get and the consumers' rules."""
    return may_change(ctx, row, acl) or _acl_reader(ctx, acl)


@dataclass(frozen=True)
class CertificateBundle:
    """What a TLS listener serves, PEM-encoded; the key is unencrypted."""

    certificate: bytes
    private_key: bytes | None
    intermediates: tuple[bytes, ...]


@dataclass(frozen=True)
class Kind:
    """Secrets or containers: their tables and Barbican's words for them."""

    name: str  # "secrets", "containers"
    table: Table
    acls: Table
    owner: str  # the ACL table's column naming the object
    noun: str  # in the ACL operations' names, "Secret" or "Container"
    not_found: str
    invalid_id: str


SECRETS = Kind(
    "secrets",
    km_secrets,
    km_secret_acls,
    "secret_id",
    "Secret",
    "Secret not found.",
    "Not Found. Provided secret id is invalid.",
)
CONTAINERS = Kind(
    "containers",
    km_containers,
    km_container_acls,
    "container_id",
    "Container",
    "Secrets container not found.",
    "Not Found. Provided container id is invalid.",
)
KINDS = {kind.name: kind for kind in (SECRETS, CONTAINERS)}


class KeyManager:
    def __init__(self, db: Database, sealer: Sealer, endpoint: str) -> None:
        self.db = db
        self.sealer = sealer
        self.endpoint = endpoint.rstrip("/")  # e.g. http://127.0.0.1:9696/key-manager

    def ref(self, kind: Kind, object_id: str) -> str:
        return f"{self.endpoint}/v1/{kind.name}/{object_id}"

    # -- lookups -------------------------------------------------------------------------------
    def _find(self, conn: Connection, kind: Kind, object_id: str) -> tuple[Row, Row | None]:
        """The object and its ACL, or Barbican's 404 for an id it would not look up or find."""
        if not is_uuid(object_id):
            raise NotFound(kind.invalid_id)
        query = select(kind.table).where(kind.table.c.id == object_id)
        if kind is SECRETS:
            query = query.where(_unexpired())
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(kind.not_found)
        acl = conn.execute(select(kind.acls).where(kind.acls.c[kind.owner] == object_id)).first()
        return row, acl

    def _allowed(
        self,
        conn: Connection,
        ctx: Context | None,
        kind: Kind,
        object_id: str,
        rule: Callable[[Context, Row, Row | None], bool],
        operation: str,
    ) -> tuple[Row, Row | None]:
        """The object and its ACL if `rule` lets the caller (None: neutrino itself) do
        `operation` on it."""
        row, acl = self._find(conn, kind, object_id)
        if ctx is not None and not rule(ctx, row, acl):
            raise refused(operation)
        return row, acl

    # -- secrets -------------------------------------------------------------------------------
    def create_secret(self, ctx: Context, request: JsonBody) -> str:
        operation = "Secret creation"
        require_member(ctx, operation)
        body = request.load()
        check_schema(body, SECRET_SCHEMA, "Secret")
        name = body.get("name")
        expiration = None
        if body.get("expiration"):
            try:
                expiration = parse_time(body["expiration"])
            except (ValueError, OverflowError):
                raise invalid_object(
                    "Secret", "Invalid date for 'expiration'", "expiration"
                ) from None
            if expiration <= now():
                raise invalid_object("Secret", "'expiration' is before current time", "expiration")
        content_type = body.get("payload_content_type")
        payload: bytes | None = None
        if "payload" in body:
            payload = payload_of(body, content_type)
        elif "payload_content_type" in body:
            raise invalid_object(
                "Secret",
                "payload must be provided when payload_content_type is specified",
                "payload",
            )
        secret_id = str(uuid.uuid4())
        moment = now()
        with self.db.write() as conn:
            conn.execute(
                insert(km_secrets).values(
                    id=secret_id,
                    project_id=ctx.project_id,
                    creator_id=ctx.user_id,
                    name=name,
                    status="ACTIVE",
                    created_at=moment,
                    updated_at=moment,
                    secret_type=body.get("secret_type", "opaque"),
                    expiration=expiration,
                    algorithm=body.get("algorithm"),
                    bit_length=body.get("bit_length"),
                    mode=body.get("mode"),
                    content_type=normalize_content_type(content_type) if payload else None,
                    payload=self.sealer.seal(secret_id, payload) if payload else None,
                )
            )
        return self.ref(SECRETS, secret_id)

    def secret(self, ctx: Context, secret_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row, acl = self._find(conn, SECRETS, secret_id)
        if not ("admin" in ctx.roles or may_read(ctx, row, acl)):
            raise refused("Secret retrieval")
        return self._secret_body(row)

    def _secret_body(self, row: Row) -> dict[str, Any]:
        body = {
            "status": row.status,
            "created": iso(row.created_at),
            "updated": iso(row.updated_at),
            "name": row.name,
            "secret_type": row.secret_type,
            "expiration": iso(row.expiration),
            "algorithm": row.algorithm,
            "bit_length": row.bit_length,
            "mode": row.mode,
            "creator_id": row.creator_id,
            "secret_ref": self.ref(SECRETS, row.id),
        }
        if row.content_type:
            body["content_types"] = {"default": row.content_type}
        return body

    def list_secrets(self, ctx: Context, query_items: Pairs) -> dict[str, Any]:
        require_member(ctx, "Secret(s) retrieval")
        params = dict(query_items)
        query = select(km_secrets).where(_unexpired())
        # Barbican filters with LIKE, which its usual database (MySQL) compares without case:
        # ilike does so on SQLite and PostgreSQL alike.
        for key, column in (("name", "name"), ("alg", "algorithm"), ("mode", "mode")):
            if params.get(key):
                query = query.where(km_secrets.c[column].ilike(params[key]))
        bits = params.get("bits", "0")
        if bits.lstrip("-").isdigit() and int(bits) > 0:
            query = query.where(km_secrets.c.bit_length == int(bits))
        if params.get("secret_type"):
            query = query.where(km_secrets.c.secret_type == params["secret_type"])
        moments = (
            ("created", "created_at"),
            ("updated", "updated_at"),
            ("expiration", "expiration"),
        )
        for key, column in moments:
            if params.get(key):
                query = query.where(*moment_conditions(km_secrets.c[column], params[key]))
        if params.get("sort"):
            query = query.order_by(*sort_order(params["sort"]))
        if params.get("acl_only", "").lower() == "true":
            # The secrets whose read ACL names the caller, whichever project holds them.
            readable = select(km_secret_acls.c.secret_id, km_secret_acls.c.users)
            with self.db.read() as conn:
                named = [r.secret_id for r in conn.execute(readable) if ctx.user_id in r.users]
            query = query.where(km_secrets.c.id.in_(named))
        else:
            query = query.where(km_secrets.c.project_id == ctx.project_id)
        return self._page(query, query_items, "secrets", lambda _conn, row: self._secret_body(row))

    def _page(
        self,
        query: Any,
        query_items: Pairs,
        collection: str,
        render: Callable[[Connection, Row], dict[str, Any]],
    ) -> dict[str, Any]:
        """One page as Barbican pages: `offset` and `limit`, `previous`/`next` and `total`."""
        offset, limit = paging(dict(query_items))
        table = query.get_final_froms()[0]
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(
                query.order_by(table.c.created_at, table.c.id).limit(limit).offset(offset)
            ).all()
            items = [render(conn, row) for row in rows]
        if not items:
            return {collection: [], "total": total}
        others = urlencode([(k, v) for k, v in query_items if k not in ("limit", "offset")])
        base = f"{self.endpoint}/v1/{collection}"

        def href(at: int) -> str:
            return f"{base}?limit={limit}&offset={at}" + (f"&{others}" if others else "")

        page: dict[str, Any] = {collection: items}
        if offset > 0:
            page["previous"] = href(max(0, offset - limit))
        if total > offset + limit:
            page["next"] = href(offset + limit)
        page["total"] = total
        return page

    def secret_payload(
        self,
        ctx: Context | None,
        secret_id: str,
        accept: str | None,
        operation: str = "Secret payload retrieval",
    ) -> tuple[bytes, str]:
        """The payload as the Accept type asks (none: octet-stream; */*: as it was stored), as
        `ctx` may read it (None: neutrino itself)."""
        with self.db.read() as conn:
            row, _ = self._allowed(conn, ctx, SECRETS, secret_id, may_read, operation)
        if row.payload is None:
            raise NotFound("Not Found. Sorry but your secret has no payload.")
        wanted = accept or "application/octet-stream"
        if wanted == "*/*":
            wanted = row.content_type
        if wanted not in SUPPORTED:
            raise issue(operation, "Wrong payload content-type", NotAcceptable)
        payload = self.sealer.open(row.id, row.payload)
        if wanted in PLAIN_TEXT:
            try:
                payload.decode()
            except UnicodeDecodeError:
                raise issue(operation, "Wrong payload content-type", NotAcceptable) from None
        return payload, wanted

    def store_payload(
        self,
        ctx: Context,
        secret_id: str,
        payload: bytes,
        content_type: str | None,
        content_encoding: str | None,
    ) -> None:
        """A metadata-only secret's payload, PUT as it is (binary may come base64-encoded)."""
        operation = "Secret update"
        with self.db.write() as conn:
            row, _ = self._allowed(conn, ctx, SECRETS, secret_id, may_change, operation)
            expected = ["application/octet-stream", "text/plain"]
            if content_type not in expected:
                raise UnsupportedMediaType(
                    f"Unexpected content type. Expected content types are: {expected}"
                )
            if not payload:
                raise issue(operation, "No data supplied to process.")
            if len(payload) > MAX_SECRET_BYTES:
                raise issue(operation, "Provided information too large to process", TooLarge)
            if row.payload is not None:
                raise Conflict("Secret already has data, cannot modify it.")
            if content_type in BINARY and content_encoding:
                if content_encoding.lower() != "base64":
                    raise issue(
                        operation,
                        f"content-encoding of '{content_encoding}' not supported",
                    )
                try:
                    payload = base64.b64decode(payload, validate=True)
                except binascii.Error:
                    raise issue(operation, "Problem decoding payload") from None
            conn.execute(
                update(km_secrets)
                .where(km_secrets.c.id == row.id)
                .values(
                    content_type=content_type,
                    payload=self.sealer.seal(row.id, payload),
                    updated_at=now(),
                )
            )

    def delete_secret(self, ctx: Context, secret_id: str) -> None:
        def rule(ctx: Context, row: Row, acl: Row | None) -> bool:
            return "admin" in ctx.roles or may_change(ctx, row, acl)

        with self.db.write() as conn:
            row, _ = self._allowed(conn, ctx, SECRETS, secret_id, rule, "Secret deletion")
            conn.execute(delete(km_secrets).where(km_secrets.c.id == row.id))

    # -- containers ----------------------------------------------------------------------------
    def create_container(self, ctx: Context, request: JsonBody) -> str:
        operation = "Container creation"
        require_member(ctx, operation)
        body = request.load()
        check_schema(body, CONTAINER_SCHEMA, "Container")
        refs = body.get("secret_refs") or []
        names = {ref.get("name", "") for ref in refs}
        if len(names) != len(refs):
            raise invalid_object(
                "Container", "Duplicate reference names are not allowed", "secret_refs"
            )
        if len({id_in_ref(ref["secret_ref"]) for ref in refs}) != len(refs):
            raise invalid_object("Container", "Duplicate secret ids are not allowed", "secret_refs")
        if any(not ref["secret_ref"].startswith(self.endpoint) for ref in refs):
            # Barbican refuses refs to another host ("no spoofing"), in these words.
            raise Invalid("Provided field value is not supported")
        if refs and body["type"] in CONTAINER_NAMES:
            required, optional, unsupported, minimum = CONTAINER_NAMES[body["type"]]
            if names - required - optional:
                raise invalid_object("Container", unsupported, "secret_refs")
            if not required <= names:
                raise invalid_object("Container", minimum, "secret_refs")
        container_id = str(uuid.uuid4())
        moment = now()
        with self.db.write() as conn:
            for ref in refs:
                found = conn.execute(
                    select(km_secrets.c.id).where(
                        km_secrets.c.id == id_in_ref(ref["secret_ref"]),
                        km_secrets.c.project_id == ctx.project_id,
                    )
                ).first()
                if found is None:
                    raise NotFound(f"Secret provided for '{ref.get('name')}' doesn't exist.")
            conn.execute(
                insert(km_containers).values(
                    id=container_id,
                    project_id=ctx.project_id,
                    creator_id=ctx.user_id,
                    name=body.get("name"),
                    status="ACTIVE",
                    created_at=moment,
                    updated_at=moment,
                    type=body["type"],
                )
            )
            for position, ref in enumerate(refs):
                conn.execute(
                    insert(km_container_secrets).values(
                        container_id=container_id,
                        position=position,
                        name=ref.get("name"),
                        secret_id=id_in_ref(ref["secret_ref"]),
                    )
                )
        return self.ref(CONTAINERS, container_id)

    def container(self, ctx: Context, container_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row, _ = self._allowed(
                conn, ctx, CONTAINERS, container_id, may_read, "Container retrieval"
            )
            return self._container_body(conn, row)

    def _container_body(self, conn: Connection, row: Row) -> dict[str, Any]:
        secrets = conn.execute(
            select(km_container_secrets)
            .where(km_container_secrets.c.container_id == row.id)
            .order_by(km_container_secrets.c.position)
        ).all()
        consumers = conn.execute(
            select(km_container_consumers)
            .where(km_container_consumers.c.container_id == row.id)
            .order_by(km_container_consumers.c.created_at)
        ).all()
        return {
            "status": row.status,
            "created": iso(row.created_at),
            "updated": iso(row.updated_at),
            "name": row.name,
            "type": row.type,
            "creator_id": row.creator_id,
            "secret_refs": [
                {"name": s.name, "secret_ref": self.ref(SECRETS, s.secret_id)} for s in secrets
            ],
            "consumers": [{"name": c.name, "URL": c.url} for c in consumers],
            "container_ref": self.ref(CONTAINERS, row.id),
        }

    def list_containers(self, ctx: Context, query_items: Pairs) -> dict[str, Any]:
        require_member(ctx, "Containers(s) retrieval")
        params = dict(query_items)
        query = select(km_containers).where(km_containers.c.project_id == ctx.project_id)
        if params.get("name"):
            query = query.where(km_containers.c.name.ilike(params["name"]))  # as secrets' names
        if params.get("type"):
            query = query.where(km_containers.c.type == params["type"])
        # Unlike the secrets', the containers' page links carry no filters.
        paging_only = [(k, v) for k, v in query_items if k in ("limit", "offset")]
        return self._page(query, paging_only, "containers", self._container_body)

    def delete_container(self, ctx: Context, container_id: str) -> None:
        with self.db.write() as conn:
            row, _ = self._allowed(
                conn, ctx, CONTAINERS, container_id, may_change, "Container deletion"
            )
            conn.execute(delete(km_containers).where(km_containers.c.id == row.id))

    # -- consumers -----------------------------------------------------------------------------
    def register_consumer(
        self, ctx: Context, container_id: str, request: JsonBody
    ) -> dict[str, Any]:
        operation = "ContainerConsumer creation"
        with self.db.write() as conn:
            row, _ = self._allowed(conn, ctx, CONTAINERS, container_id, may_read, operation)
            body = request.load()
            check_schema(body, CONSUMER_SCHEMA, "Consumer")
            key = and_(
                km_container_consumers.c.container_id == row.id,
                km_container_consumers.c.name == body["name"],
                km_container_consumers.c.url == body["URL"],
            )
            if conn.execute(select(km_container_consumers).where(key)).first() is None:
                conn.execute(
                    insert(km_container_consumers).values(
                        container_id=row.id,
                        name=body["name"],
                        url=body["URL"],
                        project_id=ctx.project_id,
                        created_at=now(),
                    )
                )
            return self._container_body(conn, row)

    def remove_consumer(self, ctx: Context, container_id: str, request: JsonBody) -> dict[str, Any]:
        operation = "ContainerConsumer deletion"
        with self.db.write() as conn:
            row, _ = self._allowed(conn, ctx, CONTAINERS, container_id, may_read, operation)
            body = request.load()
            check_schema(body, CONSUMER_SCHEMA, "Consumer")
            key = and_(
                km_container_consumers.c.container_id == row.id,
                km_container_consumers.c.name == body["name"],
                km_container_consumers.c.url == body["URL"],
            )
            consumer = conn.execute(select(km_container_consumers).where(key)).first()
            if consumer is None:
                raise NotFound("Consumer not found.")
            if ctx.project_id not in (consumer.project_id, row.project_id):
                raise Forbidden("Consumer's project does not match the container's project.")
            conn.execute(delete(km_container_consumers).where(key))
            return self._container_body(conn, row)

    # -- ACLs ----------------------------------------------------------------------------------
    def acl(self, ctx: Context, kind: Kind, object_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            _, acl = self._allowed(
                conn, ctx, kind, object_id, may_change, f"{kind.noun}ACL(s) retrieval"
            )
        if acl is None:
            return {"read": {"project-access": True}}
        return {
            "read": {
                "project-access": acl.project_access,
                "users": acl.users,
                "created": iso(acl.created_at),
                "updated": iso(acl.updated_at),
            }
        }

    def set_acl(
        self, ctx: Context, kind: Kind, object_id: str, request: JsonBody, *, replace: bool
    ) -> dict[str, str]:
        """PUT (`replace`: what the body leaves out is the default) or PATCH (changes only
        what it names)."""
        with self.db.write() as conn:
            row, acl = self._allowed(
                conn, ctx, kind, object_id, may_change, f"{kind.noun}ACL(s) Update"
            )
            body = request.load()
            check_schema(body, ACL_SCHEMA, "ACL")
            owner = kind.acls.c[kind.owner]
            read = body.get("read")
            moment = now()
            if read:
                access = read.get("project-access", True if replace else None)
                users = read.get("users", [] if replace else None)
                if acl is None:
                    conn.execute(
                        insert(kind.acls).values(
                            {
                                kind.owner: row.id,
                                "project_access": True if access is None else access,
                                "users": unique(users or []),
                                "created_at": moment,
                                "updated_at": moment,
                            }
                        )
                    )
                else:
                    changes: dict[str, Any] = {"updated_at": moment}
                    if access is not None:
                        changes["project_access"] = access
                    if users is not None:
                        changes["users"] = unique(users)
                    conn.execute(update(kind.acls).where(owner == row.id).values(changes))
            elif replace:
                conn.execute(delete(kind.acls).where(owner == row.id))
        return {"acl_ref": self.ref(kind, object_id) + "/acl"}

    def delete_acl(self, ctx: Context, kind: Kind, object_id: str) -> None:
        with self.db.write() as conn:
            row, _ = self._allowed(
                conn, ctx, kind, object_id, may_change, f"{kind.noun}ACL(s) deletion"
            )
            conn.execute(delete(kind.acls).where(kind.acls.c[kind.owner] == row.id))

    # -- for TLS termination -------------------------------------------------------------------
    def certificate_bundle(self, ctx: Context | None, ref: str) -> CertificateBundle:
        """The certificate, key and intermediates that `ref` names, as `ctx` may read them
        (None: neutrino itself, serving a listener it accepted, as Octavia's service user reads
        what the listener's owner granted it).

        `ref` is a secret's or a container's ref (or a bare id: a secret's, else a
        container's), as Octavia takes `default_tls_container_ref`: a secret holds a PKCS12
        bundle without a passphrase; a `certificate` container names the PEM parts, the key
        possibly encrypted with the container's `private_key_passphrase`. Raises NotFound for
        what does not exist, Forbidden for what the caller may not decrypt (Barbican's
        secret:decrypt and container:get), UnreadableCertificate for anything else.
        """
        match = _REF.search(ref)
        kind_name, object_id = match.groups() if match else ("", ref)
        with self.db.read() as conn:
            if kind_name == "secrets" or (not match and self._exists(conn, SECRETS, object_id)):
                return pkcs12_bundle(self._decrypted(conn, ctx, object_id))
            if kind_name != "containers" and match:
                raise NotFound(CONTAINERS.not_found)
            row, _ = self._allowed(
                conn, ctx, CONTAINERS, object_id, may_read, "Container retrieval"
            )
            if row.type != "certificate":
                raise UnreadableCertificate(f"Container {row.id} is not a certificate container")
            parts = {
                s.name: self._decrypted(conn, ctx, s.secret_id)
                for s in conn.execute(
                    select(km_container_secrets).where(
                        km_container_secrets.c.container_id == row.id
                    )
                )
            }
        return pem_bundle(parts)

    def _exists(self, conn: Connection, kind: Kind, object_id: str) -> bool:
        return (
            conn.execute(select(kind.table.c.id).where(kind.table.c.id == object_id)).first()
            is not None
        )

    def _decrypted(self, conn: Connection, ctx: Context | None, secret_id: str) -> bytes:
        row, _ = self._allowed(conn, ctx, SECRETS, secret_id, may_read, "Secret payload retrieval")
        if row.payload is None:
            raise NotFound("Not Found. Sorry but your secret has no payload.")
        return self.sealer.open(row.id, row.payload)


BAD_QUERY = "URI provided invalid query string parameters."
# The keys secrets sort on, and their columns.
SORT_KEYS = {
    **{key: key for key in ("algorithm", "bit_length", "expiration", "mode", "name")},
    **{key: key for key in ("secret_type", "status")},
    "created": "created_at",
    "updated": "updated_at",
}
# A moment filter's operators, and those it may not be given with (Barbican's
# _is_valid_date_filter): one lower and one upper bound, or one moment.
MOMENT_OPERATORS: dict[str, tuple[Callable[[Any, datetime], Any], set[str]]] = {
    "gt": (lambda column, at: column > at, {"gt", "gte"}),
    "gte": (lambda column, at: column >= at, {"gt", "gte", "eq"}),
    "lt": (lambda column, at: column < at, {"lt", "lte"}),
    "lte": (lambda column, at: column <= at, {"lt", "lte", "eq"}),
    "eq": (lambda column, at: column == at, {"eq", "gte", "lte"}),
}


def moment_conditions(column: Any, text: str) -> list[Any]:
    """`created=gte:2026-01-01T00:00:00,lt:2027-01-01T00:00:00` as conditions on `column`."""
    conditions: list[Any] = []
    seen: set[str] = set()
    for part in text.split(","):
        operator, _, moment = part.partition(":")
        if operator not in MOMENT_OPERATORS or operator == "eq":
            operator, moment = "eq", part
        condition, excluded = MOMENT_OPERATORS[operator]
        if seen & excluded:
            raise Invalid(BAD_QUERY)
        seen.add(operator)
        try:
            conditions.append(condition(column, parse_time(moment)))
        except (ValueError, OverflowError):
            raise Invalid(BAD_QUERY) from None
    return conditions


def sort_order(text: str) -> list[Any]:
    """`sort=name:desc,created` as an ORDER BY, each key once, ascending unless said."""
    order: list[Any] = []
    seen: set[str] = set()
    for part in text.split(","):
        key, _, direction = part.partition(":")
        direction = direction or "asc"
        if key not in SORT_KEYS or direction not in ("asc", "desc") or key in seen:
            raise Invalid(BAD_QUERY)
        seen.add(key)
        column = km_secrets.c[SORT_KEYS[key]]
        order.append(column.asc() if direction == "asc" else column.desc())
    return order


def require_member(ctx: Context, operation: str) -> None:
    """secrets:post, secrets:get, containers:post, containers:get: `role:member`."""
    if "member" not in ctx.roles or ctx.project_id is None:
        raise refused(operation)


def _unexpired() -> Any:
    return or_(km_secrets.c.expiration.is_(None), km_secrets.c.expiration > now())


def paging(params: Mapping[str, str]) -> tuple[int, int]:
    """Barbican's clean_paging_values: a bad value is the default, a limit within 1..100."""
    try:
        offset = int(params.get("offset") or 0)
    except ValueError:
        offset = 0
    if not 0 <= offset <= sys.maxsize:
        offset = 0
    try:
        limit = min(MAX_LIMIT, max(1, int(params.get("limit") or DEFAULT_LIMIT)))
    except ValueError:
        limit = DEFAULT_LIMIT
    return offset, limit


def unique(users: list[str]) -> list[str]:
    return list(dict.fromkeys(users))


def payload_of(body: dict[str, Any], content_type: str | None) -> bytes:
    """A create's payload as bytes, checked as Barbican's NewSecretValidator checks it."""
    encoding = body.get("payload_content_encoding")
    if content_type is None:
        raise invalid_object(
            "Secret",
            "If 'payload' is supplied, 'payload_content_type' must also be supplied.",
            "payload_content_type",
        )
    normalized = normalize_content_type(content_type)
    if normalized not in SUPPORTED:
        raise invalid_object(
            "Secret", f"payload_content_type is not one of {SUPPORTED}", "payload_content_type"
        )
    encodings = ["base64", "binary"] if normalized in BINARY else None
    if (encoding not in encodings) if encodings else encoding is not None:
        raise invalid_object(
            "Secret",
            f"payload_content_encoding is not one of {encodings}",
            "payload_content_encoding",
        )
    payload: str = body["payload"]
    if len(payload.encode()) > MAX_SECRET_BYTES:
        raise TooLarge("Provided information too large to process")
    if not payload:
        raise invalid_object("Secret", "If 'payload' specified, must be non empty", "payload")
    if encoding == "base64":
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise invalid_object(
                "Secret", "Invalid payload for payload_content_encoding", "payload"
            ) from None
    return payload.encode()


# What cryptography raises for data it cannot read as a certificate or key.
UNREADABLE = (TypeError, ValueError, UnsupportedAlgorithm)


def pkcs12_bundle(data: bytes) -> CertificateBundle:
    try:
        bundle = pkcs12.load_pkcs12(data, None)
        if bundle.cert is None or bundle.key is None:
            raise ValueError("The PKCS12 bundle holds no certificate and key")
        return CertificateBundle(
            bundle.cert.certificate.public_bytes(serialization.Encoding.PEM),
            unencrypted_pem(bundle.key),
            tuple(
                extra.certificate.public_bytes(serialization.Encoding.PEM)
                for extra in bundle.additional_certs
            ),
        )
    except UNREADABLE as error:
        raise UnreadableCertificate(str(error)) from None


def pem_bundle(parts: dict[str | None, bytes]) -> CertificateBundle:
    try:
        if "certificate" not in parts:  # its secret was deleted since
            raise ValueError("The container names no certificate")
        certificate = x509.load_pem_x509_certificate(parts["certificate"])
        key = None
        if "private_key" in parts:
            key = serialization.load_pem_private_key(
                parts["private_key"], parts.get("private_key_passphrase")
            )
        return CertificateBundle(
            certificate.public_bytes(serialization.Encoding.PEM),
            unencrypted_pem(key) if key is not None else None,
            tuple(
                c.public_bytes(serialization.Encoding.PEM)
                for c in certificates_in(parts.get("intermediates", b""))
            ),
        )
    except UNREADABLE as error:
        raise UnreadableCertificate(str(error)) from None


def certificates_in(data: bytes) -> list[x509.Certificate]:
    """Intermediates as Octavia reads them: PEM blocks, else a PKCS7 bundle (PEM or DER)."""
    if not data.strip():
        return []
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    if b"-----BEGIN PKCS7-----" in data:
        return pkcs7.load_pem_pkcs7_certificates(data)
    return pkcs7.load_der_pkcs7_certificates(data)


def unencrypted_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
