"""TLS of listeners (TERMINATED_HTTPS) and of pools (re-encryption to members)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

REF = 255


def upgrade() -> None:
    with op.batch_alter_table("lb_listeners") as table:
        table.add_column(sa.Column("default_tls_container_ref", sa.String(REF)))
        table.add_column(
            sa.Column("sni_container_refs", sa.JSON, nullable=False, server_default="[]")
        )
        table.add_column(
            sa.Column("client_authentication", sa.String(16), nullable=False, server_default="NONE")
        )
        table.add_column(sa.Column("client_ca_tls_container_ref", sa.String(REF)))
        table.add_column(sa.Column("client_crl_container_ref", sa.String(REF)))
        table.add_column(sa.Column("tls_ciphers", sa.String(2048)))
        table.add_column(sa.Column("tls_versions", sa.JSON))
        table.add_column(sa.Column("alpn_protocols", sa.JSON))
        table.add_column(sa.Column("hsts_max_age", sa.Integer))
        table.add_column(
            sa.Column(
                "hsts_include_subdomains", sa.Boolean, nullable=False, server_default=sa.false()
            )
        )
        table.add_column(
            sa.Column("hsts_preload", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("lb_pools") as table:
        table.add_column(
            sa.Column("tls_enabled", sa.Boolean, nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("tls_container_ref", sa.String(REF)))
        table.add_column(sa.Column("ca_tls_container_ref", sa.String(REF)))
        table.add_column(sa.Column("crl_container_ref", sa.String(REF)))
        table.add_column(sa.Column("tls_ciphers", sa.String(2048)))
        table.add_column(sa.Column("tls_versions", sa.JSON))
        table.add_column(sa.Column("alpn_protocols", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("lb_pools") as table:
        for name in (
            "alpn_protocols",
            "tls_versions",
            "tls_ciphers",
            "crl_container_ref",
            "ca_tls_container_ref",
            "tls_container_ref",
            "tls_enabled",
        ):
            table.drop_column(name)
    with op.batch_alter_table("lb_listeners") as table:
        for name in (
            "hsts_preload",
            "hsts_include_subdomains",
            "hsts_max_age",
            "alpn_protocols",
            "tls_versions",
            "tls_ciphers",
            "client_crl_container_ref",
            "client_ca_tls_container_ref",
            "client_authentication",
            "sni_container_refs",
            "default_tls_container_ref",
        ):
            table.drop_column(name)
