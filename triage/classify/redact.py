"""Mask PII before any text leaves the process: card numbers (Luhn-checked), IBANs (mod-97 checked),
e-mail addresses, phone numbers, and API keys or tokens.

Each match becomes a typed placeholder (`[CARD]`, `[EMAIL]`, ...) so a model still knows what was there.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
# 13-19 digits, optionally grouped by spaces or dashes.
CARD = re.compile(r"(?<![\d\w])(?:\d[ \-]?){12,18}\d(?![\d\w])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
SECRET = re.compile(
    r"""(?x)
    \b(?:sk|pk|rk)[-_](?:live|test|proj)?[-_]?[A-Za-z0-9]{16,}\b   # OpenAI, Stripe
    | \bxox[abposr]-[A-Za-z0-9\-]{10,}\b                           # Slack
    | \bgh[pousr]_[A-Za-z0-9]{30,}\b                               # GitHub
    | \bAKIA[0-9A-Z]{16}\b                                         # AWS access key id
    | \bAIza[0-9A-Za-z_\-]{35}\b                                   # Google API key
    | \beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+       # JWT
    | (?i:\bbearer\s+)[A-Za-z0-9._\-]{16,}
    | (?i:\b(?:api[_\- ]?key|token|secret|password|passwd)\b\s*[:=]\s*)[^\s"'<>]{6,}
    """
)
# +country or a leading 0 / parenthesised area code, 8-15 digits in all, common separators.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d(?:[\s.\-]?\d){6,13}(?!\w)")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


@dataclass(frozen=True)
class Redacted:
    text: str
    found: dict[str, int]  # kind -> how many were masked


def redact(text: str) -> Redacted:
    found: Counter[str] = Counter()

    def mask(kind: str, check=None):
        def replace(match: re.Match[str]) -> str:
            if check and not check(match.group(0)):
                return match.group(0)
            found[kind] += 1
            return f"[{kind}]"

        return replace

    text = SECRET.sub(mask("SECRET"), text)
    text = EMAIL.sub(mask("EMAIL"), text)
    text = IBAN.sub(mask("IBAN", iban_valid), text)
    text = CARD.sub(mask("CARD", lambda m: luhn_valid(re.sub(r"\D", "", m))), text)
    text = PHONE.sub(mask("PHONE", _looks_like_phone), text)
    return Redacted(text, dict(found))


def _looks_like_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 8 <= len(digits) <= 15 or ISO_DATE.fullmatch(candidate.strip()):
        return False
    # Plain runs of digits without + or separators are more often order or ticket numbers.
    return candidate.startswith(("+", "(", "0")) or bool(re.search(r"[\s.\-]", candidate.strip()))
