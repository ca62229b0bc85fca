"""on-call: acknowledgements, silences, escalations, and each delivery's escalation setting

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalate_to", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("escalate_after_s", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_deliveries_status_escalate_after", ["status", "escalate_after_s"], unique=False
        )
    op.create_table(
        "acknowledgements",
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=256), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("who", sa.String(length=128), nullable=False),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acknowledgements_acked_at"), ["acked_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_acknowledgements_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acknowledgements_message_id"), ["message_id"], unique=False)
    op.create_table(
        "silences",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silences_ends_at"), ["ends_at"], unique=False)
    op.create_table(
        "escalations",
        sa.Column("source_delivery_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("receiver", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_delivery_id"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("source_delivery_id"),
    )


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_table("silences")
    op.drop_table("acknowledgements")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_escalate_after")
        batch_op.drop_column("escalate_after_s")
        batch_op.drop_column("escalate_to")
