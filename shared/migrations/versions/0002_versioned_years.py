"""versioned years: each job loads its own version of a year; a pointer per year says which is current

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

- screenings: primary key (job_id, id), so a version is one key range;
- year_versions: the current version of each year;
- etl_jobs: one active job per year (unique active_year), idempotency key, version state,
  planning options, source mtime, upload flag;
- etl_chunks: checksum and oversized flag from planning, the worker and pid holding a claim;
- etl_duplicates: lines whose subscriber id appeared earlier in the same file;
- etl_rejects.reason widened to a sentence.
Existing data: the newest succeeded job of each year that still owns statistics partials becomes
the current version; other succeeded jobs are retired, failed ones discarded (the purge task
removes their rows).
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _sqlite_primary_key(columns: list[str]) -> None:
    """SQLite cannot alter a primary key: batch mode copies the table with the new one. SQLAlchemy
    warns that the copied columns still carry the old key flag, then uses the key it is given,
    which is what we want, so that one warning is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*_alembic_tmp_screenings.*primary_key", category=sa.exc.SAWarning)
        with op.batch_alter_table("screenings", recreate="always") as batch:
            batch.create_primary_key("pk_screenings", columns)


def upgrade() -> None:
    with op.batch_alter_table("etl_jobs") as batch:
        batch.add_column(sa.Column("active_year", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("version_state", sa.String(length=10), nullable=False, server_default="loading"))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source_mtime_ns", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("upload", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("options", sa.Text(), nullable=True))
        batch.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
        batch.create_unique_constraint("uq_etl_jobs_active_year", ["active_year"])
        batch.create_unique_constraint("uq_etl_jobs_idempotency_key", ["idempotency_key"])
        batch.create_index("ix_etl_jobs_version_state", ["version_state"], unique=False)

    with op.batch_alter_table("etl_chunks") as batch:
        batch.add_column(sa.Column("checksum", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("oversized", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("worker", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("worker_pid", sa.Integer(), nullable=True))

    with op.batch_alter_table("etl_rejects") as batch:
        batch.alter_column("reason", existing_type=sa.String(length=32), type_=sa.String(length=255),
                           existing_nullable=False)

    op.create_table(
        "etl_duplicates",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("first_line_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "line_no"),
    )
    op.create_table(
        "year_versions",
        sa.Column("year", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_primary_key(["job_id", "id"])
    else:
        op.execute("ALTER TABLE screenings DROP PRIMARY KEY, ADD PRIMARY KEY (job_id, id)")

    # Existing data: pick each year's current version, state the others.
    op.execute(
        "INSERT INTO year_versions (year, job_id, activated_at) "
        "SELECT j.year, MAX(j.id), MAX(j.finished_at) FROM etl_jobs j "
        "WHERE j.status = 'succeeded' AND j.year IS NOT NULL "
        "AND j.id IN (SELECT DISTINCT job_id FROM stats_partials) GROUP BY j.year"
    )
    op.execute("UPDATE etl_jobs SET version_state = 'current' WHERE id IN (SELECT job_id FROM year_versions)")
    op.execute("UPDATE etl_jobs SET version_state = 'retired' "
               "WHERE status = 'succeeded' AND version_state <> 'current'")
    op.execute("UPDATE etl_jobs SET version_state = 'discarded' WHERE status = 'failed'")
    op.execute("UPDATE etl_jobs SET active_year = COALESCE(year, expected_year) "
               "WHERE status IN ('queued', 'running') AND COALESCE(year, expected_year) IS NOT NULL "
               "AND id IN (SELECT id FROM (SELECT MAX(id) AS id FROM etl_jobs WHERE status IN ('queued', 'running') "
               "GROUP BY COALESCE(year, expected_year)) AS newest)")


def downgrade() -> None:
    bind = op.get_bind()
    # Only the current version of each year fits the old primary key (id alone).
    op.execute("DELETE FROM screenings WHERE job_id NOT IN (SELECT job_id FROM year_versions)")
    if bind.dialect.name == "sqlite":
        _sqlite_primary_key(["id"])
    else:
        op.execute("ALTER TABLE screenings DROP PRIMARY KEY, ADD PRIMARY KEY (id)")
    op.drop_table("year_versions")
    op.drop_table("etl_duplicates")
    with op.batch_alter_table("etl_rejects") as batch:
        batch.alter_column("reason", existing_type=sa.String(length=255), type_=sa.String(length=32),
                           existing_nullable=False)
    with op.batch_alter_table("etl_chunks") as batch:
        for name in ("worker_pid", "worker", "oversized", "checksum"):
            batch.drop_column(name)
    with op.batch_alter_table("etl_jobs") as batch:
        batch.drop_index("ix_etl_jobs_version_state")
        batch.drop_constraint("uq_etl_jobs_idempotency_key", type_="unique")
        batch.drop_constraint("uq_etl_jobs_active_year", type_="unique")
        for name in ("purged_at", "options", "upload", "source_mtime_ns", "api_key_id", "request_fingerprint",
                     "idempotency_key", "version_state", "active_year"):
            batch.drop_column(name)
