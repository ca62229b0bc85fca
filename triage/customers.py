"""Who wrote a message: the customer's identities and key, the same across e-mail, chat and phone.

A message names its customer by `customer.id`, `customer.email` and/or `customer.phone`. Each given
one is an identity, normalised so that the same address written twice is one identity:

- e-mail: spaces removed, lower-cased (`  Dana.W@Example.COM ` → `dana.w@example.com`);
- phone: digits only, a leading `+` kept (`+1 (555) 010-2030` → `+15550102030`).

The customer key is the first identity in the order id, e-mail, phone (`id:c-9`, `email:...`,
`phone:...`), unless the store already links one of the message's identities to a customer
(triage/store/customers.py): then that customer's key. A name is never an identity: two people
called Dana Whitfield with two addresses are two customers.

With `TRIAGE_STORE_ORIGINAL_TEXT=false` every identity and key is a digest, `sha256:<hex>` of the
plain form: the store can still match a later message to the customer, and never holds the address.
"""

from __future__ import annotations

import hashlib
import re

from triage.message import Customer

DIGEST_PREFIX = "sha256:"
_NOT_DIGIT = re.compile(r"\D")


def normal_email(value: str | None) -> str | None:
    """An e-mail address as matched: no spaces, lower case; None when nothing is left."""
    if value is None:
        return None
    email = "".join(value.split()).lower()
    return email or None


def normal_phone(value: str | None) -> str | None:
    """A phone number as matched: its digits, with the leading `+` if it had one (E.164-like)."""
    if value is None:
        return None
    digits = _NOT_DIGIT.sub("", value)
    if not digits:
        return None
    return ("+" if value.strip().startswith("+") else "") + digits


def digest(identity: str) -> str:
    """`sha256:<hex>` of a plain identity (what a store without original text keeps)."""
    return DIGEST_PREFIX + hashlib.sha256(identity.encode("utf-8")).hexdigest()


def plain_identities(
    customer_id: str | None = None, email: str | None = None, phone: str | None = None
) -> list[str]:
    """The identities given, normalised, most specific first: `id:`, `email:`, `phone:`."""
    found = []
    if customer_id is not None and customer_id.strip():
        found.append(f"id:{customer_id.strip()}")
    if address := normal_email(email):
        found.append(f"email:{address}")
    if number := normal_phone(phone):
        found.append(f"phone:{number}")
    return found


def identities(customer: Customer, hashed: bool) -> list[str]:
    """A message's customer identities as the store keeps them (digests when `hashed`)."""
    plain = plain_identities(customer.id, customer.email, customer.phone)
    return [digest(item) for item in plain] if hashed else plain


def own_key(found: list[str]) -> str | None:
    """The key a customer gets when the store links none of their identities yet: the first one."""
    return found[0] if found else None
