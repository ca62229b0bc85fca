"""triage_results.decided_by: which kind of model made the call (embedded | llm), for the cascade

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("triage_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_by", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("triage_results", schema=None) as batch_op:
        batch_op.drop_column("decided_by")
