"""incidents: grouped cases, one alert each; deliveries carry their group, incident and priority

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("receiver", sa.String(length=128), nullable=False),
        sa.Column("group_key", sa.String(length=512), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("first_case_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_case_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_count", sa.Integer(), nullable=False),
        sa.Column("ticket_count", sa.Integer(), nullable=False),
        sa.Column("top_urgency", sa.String(length=16), nullable=False),
        sa.Column("alerted_urgency", sa.String(length=16), nullable=True),
        sa.Column("alerted_count", sa.Integer(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("opener_id", sa.Integer(), nullable=True),
        sa.Column("centroid", sa.JSON(), nullable=True),
        sa.Column("centroid_n", sa.Integer(), nullable=False),
        sa.Column("slack_channel", sa.String(length=128), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("problem_ticket_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_update_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("update_claimed_by", sa.String(length=64), nullable=True),
        sa.Column("update_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("update_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_first_case_at"), ["first_case_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_next_update_at"), ["next_update_at"], unique=False)
        batch_op.create_index(
            "ix_incidents_receiver_key_closes", ["receiver", "group_key", "closes_at"], unique=False
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("group_key", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("incident_seq", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(
            "ix_deliveries_receiver_status_priority", ["receiver", "status", "priority", "id"], unique=False
        )
        batch_op.create_foreign_key("fk_deliveries_incident_id", "incidents", ["incident_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deliveries_incident_id", type_="foreignkey")
        batch_op.drop_index("ix_deliveries_receiver_status_priority")
        batch_op.drop_index(batch_op.f("ix_deliveries_incident_id"))
        batch_op.drop_column("incident_seq")
        batch_op.drop_column("incident_id")
        batch_op.drop_column("group_key")
        batch_op.drop_column("priority")
    op.drop_table("incidents")
