"""ingested_messages: the message ids `triage ingest` produced, to produce each id once a day

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingested_messages",
        sa.Column("message_id", sa.String(length=256), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("message_id"),
    )
    with op.batch_alter_table("ingested_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingested_messages_claimed_at"), ["claimed_at"], unique=False)


def downgrade() -> None:
    op.drop_table("ingested_messages")
