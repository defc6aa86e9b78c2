"""honest risk categories: screening_risk_group, atp3 risk category, dyslipidaemia, isolated systolic

Rule version 2026.11.2. ``risk_group`` becomes ``screening_risk_group`` (same levels);
``bp_category`` loses ``isolated_systolic`` (such rows were SBP 140-159 with DBP < 90, i.e. grade 1,
so they become ``stage1``, exactly what the new rule gives); four columns are added. Rows derived
under an older rule version keep that version in ``rule_version`` and null in the new columns until
their year is ingested again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GROUPS = ("CHD_RISK_EQUIVALENT", "MULTIPLE_RISK_FACTORS", "ZERO_TO_ONE_RISK_FACTOR", "INDETERMINATE")
ATP3 = ("CHD_RISK_EQUIVALENT", "TWO_PLUS_RISK_FACTORS", "ZERO_TO_ONE_RISK_FACTOR", "INDETERMINATE")
BP = ("normal", "elevated", "prehypertension", "stage1", "stage2")
OLD_BP = (*BP, "isolated_systolic")


def upgrade() -> None:
    op.execute("UPDATE screenings SET bp_category = 'stage1' WHERE bp_category = 'isolated_systolic'")
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.alter_column(
            "risk_group",
            new_column_name="screening_risk_group",
            existing_type=sa.Enum(*GROUPS, name="risk_group"),
            type_=sa.Enum(*GROUPS, name="screening_risk_group"),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "bp_category",
            existing_type=sa.Enum(*OLD_BP, name="bp_category"),
            type_=sa.Enum(*BP, name="bp_category"),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("atp3_risk_factor_count", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("atp3_risk_category", sa.Enum(*ATP3, name="atp3_risk_category"), nullable=True))
        batch_op.add_column(sa.Column("isolated_systolic", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("dyslipidaemia", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_column("dyslipidaemia")
        batch_op.drop_column("isolated_systolic")
        batch_op.drop_column("atp3_risk_category")
        batch_op.drop_column("atp3_risk_factor_count")
        batch_op.alter_column(
            "bp_category",
            existing_type=sa.Enum(*BP, name="bp_category"),
            type_=sa.Enum(*OLD_BP, name="bp_category"),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "screening_risk_group",
            new_column_name="risk_group",
            existing_type=sa.Enum(*GROUPS, name="screening_risk_group"),
            type_=sa.Enum(*GROUPS, name="risk_group"),
            existing_nullable=True,
        )
