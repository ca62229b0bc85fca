"""warehouse sync: changed_at on deliveries and incidents, labels by stored_at, warehouse_cursors

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-05 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE deliveries SET changed_at = COALESCE(sent_at, created_at)")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("changed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_deliveries_changed_at_id", ["changed_at", "id"], unique=False)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE incidents SET changed_at = COALESCE(updated_at, last_case_at)")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("changed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_incidents_changed_at_id", ["changed_at", "id"], unique=False)
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labels_stored_at"), ["stored_at"], unique=False)
    op.create_table(
        "warehouse_cursors",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=512), nullable=False),
        sa.Column("position_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position_key", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "warehouse"),
    )


def downgrade() -> None:
    op.drop_table("warehouse_cursors")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_stored_at"))
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_changed_at_id")
        batch_op.drop_column("changed_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_changed_at_id")
        batch_op.drop_column("changed_at")
