"""indexes for records pages filtered by age band or province (rare values)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_screenings_age_group", "screenings", ["job_id", "age_group", "id"], unique=False)
    op.create_index("ix_screenings_province", "screenings", ["job_id", "province", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_screenings_province", table_name="screenings")
    op.drop_index("ix_screenings_age_group", table_name="screenings")
