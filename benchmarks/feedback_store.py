"""A store as a support team leaves it after two months of feedback, to measure `triage eval --from-store`.

The messages are real customer queries (BANKING77, a text,label CSV of intents; CC BY 4.0, Casanueva et
al. 2020). The team is a bank's support desk with its own policy, written below: a lost, stolen or
compromised card and money the customer does not recognise are urgent, everything else is not; and
each intent belongs to one of the default categories. The shipped embedded model judges every message
(the stored triage result), and the team labels each one by its policy, in a random order over 60 days
(as clicks on the alerts' buttons would), so the labels are corrections where the model disagrees and
confirmations where it agrees.

    python benchmarks/feedback_store.py path/to/banking77/train.csv --out feedback.db --messages 600
    TRIAGE_DATABASE_URL=sqlite:///feedback.db triage eval --from-store
    TRIAGE_DATABASE_URL=sqlite:///feedback.db triage train --from-store --task urgency --out heads
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from triage.classify.embedded import EmbeddedClassifier
from triage.message import SupportMessage
from triage.settings import ClassifierSettings
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import LabelRow, MessageRow, TriageRow

URGENT = {
    "lost_or_stolen_card",
    "compromised_card",
    "card_swallowed",
    "lost_or_stolen_phone",
    "card_payment_not_recognised",
    "cash_withdrawal_not_recognised",
    "direct_debit_payment_not_recognised",
    "transaction_charged_twice",
    "wrong_amount_of_cash_received",
}
CATEGORY = {  # the intents the desk gets, by the category it files them under
    "security": [
        "lost_or_stolen_card",
        "compromised_card",
        "lost_or_stolen_phone",
        "card_payment_not_recognised",
        "cash_withdrawal_not_recognised",
        "direct_debit_payment_not_recognised",
    ],
    "billing": [
        "transaction_charged_twice",
        "extra_charge_on_statement",
        "card_payment_fee_charged",
        "cash_withdrawal_charge",
        "exchange_charge",
        "transfer_fee_charged",
    ],
    "refund": ["request_refund", "Refund_not_showing_up"],
    "shipping": ["card_arrival", "card_delivery_estimate", "order_physical_card"],
    "account_access": ["passcode_forgotten", "pin_blocked", "unable_to_verify_identity"],
    "bug": ["card_not_working", "contactless_not_working", "virtual_card_not_working", "top_up_failed"],
    "cancellation": ["terminate_account"],
    "how_to": ["change_pin", "activate_my_card", "apple_pay_or_google_pay", "edit_personal_details"],
    "other": ["card_swallowed", "wrong_amount_of_cash_received", "exchange_rate", "country_support"],
}
INTENT_CATEGORY = {intent: category for category, intents in CATEGORY.items() for intent in intents}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="BANKING77's train.csv (text,label)")
    parser.add_argument("--out", type=Path, default=Path("feedback.db"))
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--seed", type=int, default=18)
    arguments = parser.parse_args()

    with arguments.csv.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["label"] in INTENT_CATEGORY]
    rng = random.Random(arguments.seed)
    chosen = rng.sample(rows, min(arguments.messages, len(rows)))
    arguments.out.unlink(missing_ok=True)
    store = Store(f"sqlite:///{arguments.out}")
    store.upgrade()
    model = EmbeddedClassifier.load(ClassifierSettings())
    start, started = datetime.now(UTC) - timedelta(days=60), time.perf_counter()
    feedback = FeedbackStore(store)
    for index, row in enumerate(chosen):
        at = start + timedelta(minutes=index * 60 * 24 * 59 / len(chosen))
        message = SupportMessage(id=f"b77-{index}", body=row["text"])
        judged = model.classify(message)
        store.save_triaged(
            MessageRow(
                id=message.id,
                conversation_id=message.id,
                raw=message.model_dump_json(),
                parsed=message.model_dump(mode="json"),
                kafka_topic="support.messages",
                kafka_partition=0,
                kafka_offset=index,
                received_at=at,
            ),
            TriageRow(message_id=message.id, receivers=[], triaged_at=at, **judged.model_dump()),
            [],
        )
        team = {
            "urgency": "urgent" if row["label"] in URGENT else "normal",
            "category": INTENT_CATEGORY[row["label"]],
        }
        labels = [
            LabelRow(
                message_id=message.id,
                field=field,
                model_value=getattr(judged, field),
                team_value=value,
                source="slack",
                person_id="U0DESK",
                person_name="desk",
                event_key=f"slack:{index}:U0DESK:{field}",
                labelled_at=at + timedelta(minutes=15),
            )
            for field, value in team.items()
        ]
        feedback.save([Correction(labels)])
    store.close()
    print(
        f"wrote {arguments.out}: {len(chosen)} messages judged by {model.name} and labelled by the desk's "
        f"policy ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
