"""audit log of person-level reads; an index for the running-jobs cap per API key

Revision ID: 0005
Revises: 0004
(etl_jobs.api_key_id itself comes with 0002.)
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("key_name", sa.String(length=64), nullable=True),
        sa.Column("route", sa.String(length=128), nullable=False),
        sa.Column("filters", sa.Text(), nullable=True),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_key_at", ["api_key_id", "at"], unique=False)
    with op.batch_alter_table("etl_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_etl_jobs_api_key_status", ["api_key_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("etl_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_etl_jobs_api_key_status")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_key_at")
        batch_op.drop_index("ix_audit_log_at")
    op.drop_table("audit_log")
