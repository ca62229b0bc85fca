"""messages.survey_type and survey_score: survey answers (CSAT, NPS, CES) for the report's CX scores

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("survey_type", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("survey_score", sa.SmallInteger(), nullable=True))
        batch_op.create_index("ix_messages_survey_received", ["survey_type", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_survey_received")
        batch_op.drop_column("survey_score")
        batch_op.drop_column("survey_type")
