"""The one-line summary of the offline backends: the sentence that says what the customer needs.

Greetings ("Hey there!"), sign-offs ("Thanks, Ana"), ticket references and quoted replies are skipped;
of the remaining sentences the one with the most signs of a problem or a request wins (the first on a
tie). The subject is used instead when it says more than that sentence. In the message's language:
the embedded backend does not translate. PII in it is masked, as in what the LLM backend is sent.
"""

from __future__ import annotations

import re

from triage.classify.redact import redact
from triage.message import SupportMessage

LIMIT = 200

QUOTE_START = re.compile(
    r"^(-{2,}\s*(original message|mensaje original|message d'origine|ursprüngliche nachricht|"
    r"mensagem original)|(on|el|le|am|em) .{0,80}(wrote|escribió|a écrit|schrieb|escreveu)\s*:?$|"
    r"(from|de|von|da):\s.*@)",
    re.IGNORECASE,
)
GREETING = re.compile(
    r"^(hi|hello|hey|hey there|hiya|good (morning|afternoon|evening)|dear\b.*|to whom it may concern|"
    r"hola|buenas( tardes| noches)?|buenos días|estimad[oa]s?\b.*|bonjour|bonsoir|salut|madame.*|monsieur.*|"
    r"hallo|guten (tag|morgen|abend)|sehr geehrte.*|liebe[s]? .*|moin|servus|olá|ola|oi|bom dia|boa tarde|"
    r"boa noite|prezad[oa]s?\b.*)([\s,]+(team|there|all|support|everyone|equipo|équipe|zusammen|pessoal|"
    r"[A-ZÀ-ÿ][\w.-]*))*\s*[!,.:]*$",
    re.IGNORECASE,
)
SIGN_OFF = re.compile(
    r"^(thanks?( you)?( so much| in advance| a lot)?|many thanks|thx|cheers|best|regards|kind regards|"
    r"best regards|sincerely|br|gracias|muchas gracias|saludos|un saludo|atentamente|"
    r"merci( beaucoup| d'avance)?|cordialement|bien à vous|bonne journée|danke( schön| sehr)?|"
    r"vielen dank|viele grüße|mit freundlichen grüßen|"
    r"lg|obrigad[oa]|att|atenciosamente|abraços?)\b[\s,.!]*([A-ZÀ-ÿ][\w.-]*[\s,.]*){0,3}$",
    re.IGNORECASE,
)
REFERENCE = re.compile(
    r"^((ticket|case|ref(erence)?|order|pedido|commande|bestellung|chamado|caso|account( id)?)\s*"
    r"(no\.?|nr\.?|n°|number|#)?\s*[:#]?\s*[\w-]*\d[\w-]*|#\d+)[\s.]*$",
    re.IGNORECASE,
)
SIGNALS = re.compile(
    r"\b(can'?t|cannot|not|no|never|down|error|fail\w*|broken|crash\w*|wrong|missing|lost|still|"
    r"charged|refund\w*|cancel\w*|need|please|urgent\w*|how|why|where|when|help|issue|problem|"
    r"no puedo|ni|nada|caíd[oa]|error|falla\w*|necesit\w*|por favor|cómo|dónde|reembolso|cobr\w*|"
    r"ne|pas|plus|panne|erreur|impossible|besoin|comment|où|rembours\w*|débit\w*|"
    r"nicht|kein\w*|ausgefallen|fehler|geht|brauche\w*|bitte|wie|wo|erstatt\w*|abgebucht|"
    r"não|nada|fora do ar|erro|falh\w*|preciso|como|onde|reembolso|cobr\w*)\b",
    re.IGNORECASE,
)
SUBJECT_PREFIX = re.compile(r"^((re|fwd?|aw|wg|tr|rv|res|enc)\s*:\s*)+", re.IGNORECASE)
LEADING_GREETING = re.compile(
    r"^(hi|hello|hey|hola|buenas|buenos días|bonjour|hallo|guten tag|olá|oi|bom dia|boa tarde)"
    r"( there| team| all| equipo)?\s*[,!:]\s+(?=\S)",
    re.IGNORECASE,
)
SHORT = 6  # words: a shorter sentence usually leans on the one before it
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"«(¿¡]?[A-ZÀ-Þ])")


def headline(message: SupportMessage, limit: int = LIMIT) -> str:
    sentences = _sentences(message.body)
    best = ""
    if sentences:
        top = max(map(_score, sentences))
        index = next(i for i, s in enumerate(sentences) if _score(s) >= top - 1)  # early and near the best
        best = sentences[index]
        if _words(best) < SHORT and index > 0:  # "Where can I add it?" needs the sentence before it
            best = f"{sentences[index - 1]} {best}"
    subject = SUBJECT_PREFIX.sub("", " ".join((message.subject or "").split()))
    if subject and not _skipped(subject) and (not best or _score(subject) > _score(best)):
        best = subject
    if not best:  # nothing but greetings and sign-offs: say what there is
        best = " ".join(message.body.split()) or subject
    best = redact(best[:1].upper() + best[1:]).text  # before the cut, which could leave half an address
    return best if len(best) <= limit else best[: limit - 1].rstrip() + "…"


def _sentences(body: str) -> list[str]:
    kept: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if QUOTE_START.match(line):
            break  # everything below is the quoted conversation
        if not line or line.startswith(">"):
            continue
        for sentence in SENTENCE_END.split(line):
            sentence = sentence.strip()
            sentence = LEADING_GREETING.sub("", sentence)  # "Hi, my card was declined"
            if sentence and not _skipped(sentence):
                kept.append(sentence)
    return kept


def _skipped(text: str) -> bool:
    return bool(GREETING.match(text) or SIGN_OFF.match(text) or REFERENCE.match(text))


def _words(text: str) -> int:
    return len(text.split())


def _score(sentence: str) -> int:
    words = _words(sentence)
    return len(SIGNALS.findall(sentence)) + ("?" in sentence) + (words >= SHORT) - 2 * (words < 4)
