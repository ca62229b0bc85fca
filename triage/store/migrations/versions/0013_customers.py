"""customers: messages.customer_key, customer_identities, triage_results.customer_history

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_key", sa.String(length=300), nullable=True))
        batch_op.create_index(
            "ix_messages_customer_key_created_at", ["customer_key", "created_at"], unique=False
        )
    with op.batch_alter_table("triage_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_history", sa.JSON(), nullable=True))
    op.create_table(
        "customer_identities",
        sa.Column("identity", sa.String(length=300), nullable=False),
        sa.Column("customer_key", sa.String(length=300), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identity"),
    )
    with op.batch_alter_table("customer_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_identities_customer_key"), ["customer_key"], unique=False
        )


def downgrade() -> None:
    op.drop_table("customer_identities")
    with op.batch_alter_table("triage_results", schema=None) as batch_op:
        batch_op.drop_column("customer_history")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_customer_key_created_at")
        batch_op.drop_column("customer_key")
