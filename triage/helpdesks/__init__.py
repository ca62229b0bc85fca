"""One module per helpdesk triage writes back to, and the configured ones by system name."""

from __future__ import annotations

from triage.helpdesks.base import Helpdesk
from triage.helpdesks.freshdesk import Freshdesk
from triage.helpdesks.gorgias import Gorgias
from triage.helpdesks.kustomer import Kustomer
from triage.helpdesks.zendesk import Zendesk
from triage.settings import Settings

SETTINGS = {  # system -> the setting that turns it on
    "zendesk": "TRIAGE_HELPDESK__BASE_URL",
    "gorgias": "TRIAGE_GORGIAS__BASE_URL",
    "kustomer": "TRIAGE_KUSTOMER__BASE_URL",
    "freshdesk": "TRIAGE_FRESHDESK__BASE_URL",
}


def configured(settings: Settings) -> dict[str, Helpdesk]:
    """The helpdesks whose base URL is set, by system name (a message's `ticket.system`)."""
    desks: dict[str, Helpdesk] = {}
    if settings.helpdesk.base_url:
        desks["zendesk"] = Zendesk.from_settings(settings.helpdesk)
    if settings.gorgias.base_url:
        desks["gorgias"] = Gorgias.from_settings(settings.gorgias)
    if settings.kustomer.base_url:
        desks["kustomer"] = Kustomer.from_settings(settings.kustomer)
    if settings.freshdesk.base_url:
        desks["freshdesk"] = Freshdesk.from_settings(settings.freshdesk)
    return desks
