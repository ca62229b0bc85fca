"""deliveries carry their conversation, so each conversation's alerts go out in order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.String(length=256), nullable=True))
        batch_op.create_index(
            "ix_deliveries_receiver_conversation", ["receiver", "conversation_id", "status"], unique=False
        )
    op.execute(
        "UPDATE deliveries SET conversation_id ="
        " (SELECT messages.conversation_id FROM messages WHERE messages.id = deliveries.message_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_receiver_conversation")
        batch_op.drop_column("conversation_id")
