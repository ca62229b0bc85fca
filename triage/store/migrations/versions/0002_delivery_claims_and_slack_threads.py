"""delivery claims, quiet hours, slack threads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:33:18.575984
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_threads",
        sa.Column("conversation_id", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("top_urgency", sa.String(length=16), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "channel"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("not_before")

    op.drop_table("slack_threads")
