"""The offline headline: the sentence that carries the request or the problem."""

import pytest

from triage.classify.headline import headline
from triage.message import SupportMessage


def summary(body: str, subject: str | None = None) -> str:
    return headline(SupportMessage(id="h", body=body, subject=subject))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Hey there!\n\nRefund still not received after 78 days. Thanks, Ana",
            "Refund still not received after 78 days.",
        ),
        (
            "Hi!\nHow do I export my invoices as CSV? I can only find the PDF option.",
            "How do I export my invoices as CSV?",
        ),
        (
            "Hola, buenos días.\nNo puedo iniciar sesión desde ayer.\nSaludos",
            "No puedo iniciar sesión desde ayer.",
        ),
        (
            "Bonjour,\n\nLe paiement a échoué trois fois ce matin.\n\nCordialement,\nClaire",
            "Le paiement a échoué trois fois ce matin.",
        ),
        (
            "Guten Tag,\nunser Dashboard lädt nicht mehr.\nViele Grüße\nJonas",
            "Unser Dashboard lädt nicht mehr.",
        ),
        ("Olá! Meu pedido não chegou ainda.\nObrigado", "Meu pedido não chegou ainda."),
        ("Hi, my card was declined twice today.", "My card was declined twice today."),
    ],
)
def test_greetings_and_sign_offs_are_skipped(body, expected):
    assert summary(body) == expected


def test_quoted_replies_and_ticket_references_are_skipped():
    body = (
        "Ticket #48211\n"
        "Checkout still fails with error 503 for every customer.\n\n"
        "On Mon, 20 Nov 2026, Support <help@example.com> wrote:\n"
        "> How do I reset my password? Please help, nothing works."
    )
    assert summary(body) == "Checkout still fails with error 503 for every customer."
    assert summary("Hello,\n> I cannot log in at all, please help\nAll good now.") == "All good now."


def test_a_short_follow_up_keeps_the_sentence_it_leans_on():
    assert summary("Hello,\nOur PO number changed.\nWhere do I add it?\nThanks, Jana") == (
        "Our PO number changed. Where do I add it?"
    )


def test_the_subject_when_it_says_more():
    assert summary("Hi team,\nsee below.\nThanks", subject="Re: Payments failing for all EU customers") == (
        "Payments failing for all EU customers"
    )
    body = "Hi, since this morning every PDF export comes out blank and I need the reports today."
    assert summary(body, subject="PDF export") == (
        "Since this morning every PDF export comes out blank and I need the reports today."
    )


def test_trimmed_to_200_characters_on_one_line():
    text = summary("Hello!\nThe export fails " + "again and again " * 30)
    assert 190 <= len(text) <= 200 and text.endswith("…") and "\n" not in text


def test_a_message_of_only_a_greeting_is_kept_as_it_is():
    assert summary("Hi there!") == "Hi there!"
