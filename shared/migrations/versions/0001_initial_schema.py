"""initial schema

Revision ID: 0001
Revises: -
Create Date: 2026-11-29 19:42:44.844882
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "etl_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("source_path", sa.String(length=1024), nullable=False),
        sa.Column("original_filename", sa.String(length=255), nullable=True),
        sa.Column("expected_year", sa.SmallInteger(), nullable=True),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.Column("encoding", sa.String(length=16), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("chunks_total", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("cells_rejected", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("plan_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("planned_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("etl_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_etl_jobs_status", ["status"], unique=False)

    op.create_table(
        "etl_rejects",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("column_name", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("raw_value", sa.String(length=255), nullable=True),
        sa.Column("whole_row", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("etl_rejects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_etl_rejects_job_chunk_line", ["job_id", "chunk_index", "line_no"], unique=False
        )

    op.create_table(
        "screenings",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("sex", sa.SmallInteger(), nullable=False),
        sa.Column("age_group", sa.SmallInteger(), nullable=False),
        sa.Column("province", sa.SmallInteger(), nullable=True),
        sa.Column(
            "height_cm",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "weight_kg",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "waist_cm",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "vision_left",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "vision_right",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column("hearing_left", sa.SmallInteger(), nullable=True),
        sa.Column("hearing_right", sa.SmallInteger(), nullable=True),
        sa.Column(
            "sbp",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "dbp",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "fasting_glucose",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "total_cholesterol",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "triglycerides",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "hdl",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "ldl",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "hemoglobin",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column("urine_protein", sa.SmallInteger(), nullable=True),
        sa.Column(
            "creatinine",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "ast",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "alt",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "ggt",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column("smoking", sa.SmallInteger(), nullable=True),
        sa.Column("drinking", sa.SmallInteger(), nullable=True),
        sa.Column("oral_exam", sa.SmallInteger(), nullable=True),
        sa.Column("dental_caries", sa.SmallInteger(), nullable=True),
        sa.Column("missing_teeth", sa.SmallInteger(), nullable=True),
        sa.Column("tooth_wear", sa.SmallInteger(), nullable=True),
        sa.Column("wisdom_tooth", sa.SmallInteger(), nullable=True),
        sa.Column("tartar", sa.SmallInteger(), nullable=True),
        sa.Column("release_date", sa.String(length=10), nullable=True),
        sa.Column(
            "bmi",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column("flag_hypertension", sa.Boolean(), nullable=True),
        sa.Column("flag_diabetes", sa.Boolean(), nullable=True),
        sa.Column("flag_high_total_cholesterol", sa.Boolean(), nullable=True),
        sa.Column("flag_high_triglycerides", sa.Boolean(), nullable=True),
        sa.Column("flag_low_hdl", sa.Boolean(), nullable=True),
        sa.Column("flag_obesity", sa.Boolean(), nullable=True),
        sa.Column("flag_smoking", sa.Boolean(), nullable=True),
        sa.Column("risk_factor_count", sa.SmallInteger(), nullable=True),
        sa.Column(
            "risk_group",
            sa.Enum(
                "CHD_RISK_EQUIVALENT",
                "MULTIPLE_RISK_FACTORS",
                "ZERO_TO_ONE_RISK_FACTOR",
                "INDETERMINATE",
                name="risk_group",
            ),
            nullable=True,
        ),
        sa.Column(
            "bp_category",
            sa.Enum(
                "normal",
                "elevated",
                "prehypertension",
                "stage1",
                "stage2",
                "isolated_systolic",
                name="bp_category",
            ),
            nullable=True,
        ),
        sa.Column(
            "glucose_category",
            sa.Enum("normal", "impaired", "diabetes", name="glucose_category"),
            nullable=True,
        ),
        sa.Column(
            "bmi_class",
            sa.Enum("underweight", "normal", "pre_obese", "obese_1", "obese_2", "obese_3", name="bmi_class"),
            nullable=True,
        ),
        sa.Column("abdominal_obesity", sa.Boolean(), nullable=True),
        sa.Column(
            "tc_class", sa.Enum("desirable", "borderline_high", "high", name="tc_class"), nullable=True
        ),
        sa.Column(
            "ldl_class",
            sa.Enum("optimal", "near_optimal", "borderline_high", "high", "very_high", name="ldl_class"),
            nullable=True,
        ),
        sa.Column(
            "tg_class",
            sa.Enum("normal", "borderline_high", "high", "very_high", name="tg_class"),
            nullable=True,
        ),
        sa.Column("hdl_class", sa.Enum("low", "normal", "high", name="hdl_class"), nullable=True),
        sa.Column("mets_waist", sa.Boolean(), nullable=True),
        sa.Column("mets_triglycerides", sa.Boolean(), nullable=True),
        sa.Column("mets_hdl", sa.Boolean(), nullable=True),
        sa.Column("mets_bp", sa.Boolean(), nullable=True),
        sa.Column("mets_glucose", sa.Boolean(), nullable=True),
        sa.Column("metabolic_syndrome", sa.Boolean(), nullable=True),
        sa.Column("anemia", sa.Boolean(), nullable=True),
        sa.Column(
            "anemia_severity",
            sa.Enum("severe", "moderate", "mild", "none", name="anemia_severity"),
            nullable=True,
        ),
        sa.Column(
            "egfr",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "egfr_stage", sa.Enum("G5", "G4", "G3b", "G3a", "G2", "G1", name="egfr_stage"), nullable=True
        ),
        sa.Column("proteinuria", sa.Enum("negative", "trace", "positive", name="proteinuria"), nullable=True),
        sa.Column("liver_enzymes_high", sa.Boolean(), nullable=True),
        sa.Column("ggt_high", sa.Boolean(), nullable=True),
        sa.Column(
            "cvd_10y",
            sa.Float().with_variant(mysql.FLOAT(), "mariadb").with_variant(mysql.FLOAT(), "mysql"),
            nullable=True,
        ),
        sa.Column("rule_version", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "stats_partials",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column(
            "payload",
            sa.LargeBinary()
            .with_variant(mysql.LONGBLOB(), "mariadb")
            .with_variant(mysql.LONGBLOB(), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk_index"),
    )
    op.create_table(
        "stats_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column(
            "payload",
            sa.LargeBinary()
            .with_variant(mysql.LONGBLOB(), "mariadb")
            .with_variant(mysql.LONGBLOB(), "mysql"),
            nullable=False,
        ),
        sa.Column("dataset_version", sa.Text(), nullable=False),
        sa.Column("rule_version", sa.String(length=16), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("generation", "key", name="uq_stats_snapshots_generation_key"),
    )
    with op.batch_alter_table("stats_snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_stats_snapshots_key", ["key"], unique=False)

    op.create_table(
        "etl_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("byte_start", sa.BigInteger(), nullable=False),
        sa.Column("byte_end", sa.BigInteger(), nullable=False),
        sa.Column("first_line_no", sa.Integer(), nullable=False),
        sa.Column("n_lines", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("cells_rejected", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("timings", sa.Text(), nullable=True),
        sa.Column("years", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["etl_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "chunk_index", name="uq_etl_chunks_job_index"),
    )
    with op.batch_alter_table("etl_chunks", schema=None) as batch_op:
        batch_op.create_index("ix_etl_chunks_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("etl_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_etl_chunks_status")

    op.drop_table("etl_chunks")
    with op.batch_alter_table("stats_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_snapshots_key")

    op.drop_table("stats_snapshots")
    op.drop_table("stats_partials")
    op.drop_table("screenings")
    with op.batch_alter_table("etl_rejects", schema=None) as batch_op:
        batch_op.drop_index("ix_etl_rejects_job_chunk_line")

    op.drop_table("etl_rejects")
    with op.batch_alter_table("etl_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_etl_jobs_status")

    op.drop_table("etl_jobs")
    op.drop_table("api_keys")
