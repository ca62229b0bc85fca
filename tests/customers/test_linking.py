"""One customer across channels: identities normalised, linked in the writer's transaction."""

import pytest
from sqlalchemy import select

from tests.store.test_store import rows
from triage.customers import digest, identities, normal_email, normal_phone
from triage.message import Customer
from triage.store import Store
from triage.store.tables import CustomerIdentityRow, MessageRow


@pytest.fixture
def store(database_url):
    store = Store(database_url)
    store.upgrade()
    yield store
    store.close()


def save(store: Store, message_id: str, hashed: bool = False, **customer: str) -> None:
    message, result, deliveries = rows(message_id)
    assert store.save_triaged(message, result, deliveries, identities(Customer(**customer), hashed))


def keys(store: Store) -> dict[str, str | None]:
    with store.session() as session:
        return dict(session.execute(select(MessageRow.id, MessageRow.customer_key)).all())


def test_addresses_are_normalised():
    assert normal_email("  Dana.W@Example.COM ") == "dana.w@example.com"
    assert normal_email("dana w@example.com") == "danaw@example.com"
    assert normal_phone("+1 (555) 010-2030") == "+15550102030"
    assert normal_phone("555.010.2030") == "5550102030"
    assert normal_phone("n/a") is None
    assert identities(Customer(id=" c-9 ", email="A@B.C", phone="+44 20"), hashed=False) == [
        "id:c-9",
        "email:a@b.c",
        "phone:+4420",
    ]


def test_the_same_person_on_email_and_chat_is_one_customer(store):
    save(store, "mail-1", email="Dana.W@Example.com", name="Dana Whitfield")
    save(store, "chat-1", id="c-9", email="dana.w@example.com ")  # the chat widget knows both
    save(store, "mail-2", email="DANA.W@EXAMPLE.COM")
    save(store, "chat-2", id="c-9")
    save(store, "phone-1", email="dana.w@example.com", phone="+1 555 010 2030")
    save(store, "sms-1", phone="+1-555-010-2030")
    found = keys(store)
    assert len(set(found.values())) == 1, found
    assert found["mail-1"] == "email:dana.w@example.com"  # the first address seen names the customer


def test_a_look_alike_stays_another_customer(store):
    save(store, "a", email="dana@example.com", name="Dana Whitfield")
    save(store, "b", email="dana.whitfield@other.example", name="Dana Whitfield")
    save(store, "c", id="c-1", name="Dana Whitfield")
    found = keys(store)
    assert len({found["a"], found["b"], found["c"]}) == 3


def test_two_customers_that_turn_out_one_are_merged(store):
    save(store, "mail", email="sam@example.com")
    save(store, "chat", id="c-7")  # nothing links them yet
    assert keys(store)["mail"] != keys(store)["chat"]
    save(store, "both", id="c-7", email="sam@example.com")
    found = keys(store)
    assert found["mail"] == found["chat"] == found["both"] == "id:c-7"
    save(store, "later", email="SAM@example.com")
    assert keys(store)["later"] == "id:c-7"


def test_without_original_text_only_digests_are_stored(store):
    save(store, "m1", hashed=True, id="c-9", email="dana@example.com", phone="+1 555 0100")
    save(store, "m2", hashed=True, email=" Dana@Example.com")
    found = keys(store)
    assert found["m1"] == found["m2"] == digest("id:c-9")
    with store.session() as session:
        stored = session.scalars(select(CustomerIdentityRow.identity)).all()
    assert sorted(stored) == sorted(
        digest(i) for i in ("id:c-9", "email:dana@example.com", "phone:+15550100")
    )
    assert all(identity.startswith("sha256:") and len(identity) == 71 for identity in stored)
