import pytest

from triage.classify.redact import iban_valid, luhn_valid, redact


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        ("card 4111 1111 1111 1111 was declined", "CARD", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111", "CARD", "4111-1111-1111-1111"),
        ("amex 378282246310005 thanks", "CARD", "378282246310005"),
        ("write to ana.lopez+shop@example.co.uk", "EMAIL", "ana.lopez+shop@example.co.uk"),
        ("call me on +1 (415) 555-0132", "PHONE", "555-0132"),
        ("mi número es 612 34 56 78 90", "PHONE", "612 34 56 78"),
        ("ring 020 7946 0958 after six", "PHONE", "7946 0958"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("GB33BUKB20201555555555", "IBAN", "GB33BUKB20201555555555"),
        ("my key sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2 leaked", "SECRET", "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2"),
        ("token xoxb-123456789012-abcdefABCDEF", "SECRET", "xoxb-123456789012"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "SECRET", "ghp_abcdefghij"),
        ("AKIAIOSFODNN7EXAMPLE in the logs", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456", "SECRET", "abcdefghijklmnopqrstuvwxyz"),
        ("password: hunter2hunter2", "SECRET", "hunter2hunter2"),
    ],
)
def test_pii_is_masked_with_a_typed_placeholder(text, kind, secret):
    result = redact(text)
    assert secret not in result.text
    assert f"[{kind}]" in result.text and result.found[kind] >= 1


@pytest.mark.parametrize(
    "text",
    [
        "order 55812 and ticket #48211",
        "version 4.2.1 failed at 09:40 UTC with error 503",
        "it happened on 2026-11-20 around noon",
        "card 4111 1111 1111 1112 is not a real card",  # fails the Luhn check: not masked as a card
        "IBAN DE00 3704 0044 0532 0130 00",  # fails mod-97
        "uploads over 10 MB crash, 3 times today",
    ],
)
def test_ordinary_numbers_are_left_alone(text):
    result = redact(text)
    assert "[CARD]" not in result.text and "[IBAN]" not in result.text
    if "order" in text or "version" in text or "2026" in text or "MB" in text:
        assert result.text == text


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE00370400440532013000")
