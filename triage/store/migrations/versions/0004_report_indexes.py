"""an index for the CX health report's alert counts and time-to-alert samples

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:30:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_receiver_status_created", ["receiver", "status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_receiver_status_created")
