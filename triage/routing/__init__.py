"""The routing tree operators edit in config/routing.yaml: who hears about which case."""

from triage.routing.fields import Vocabulary
from triage.routing.tree import (
    RESULTS_RECEIVER,
    Receiver,
    RoutingTree,
    case_fields,
    load_routing,
    parse_routing,
)
from triage.routing.yamlfile import RoutingError

__all__ = [
    "RESULTS_RECEIVER",
    "Receiver",
    "RoutingError",
    "RoutingTree",
    "Vocabulary",
    "case_fields",
    "load_routing",
    "parse_routing",
]
