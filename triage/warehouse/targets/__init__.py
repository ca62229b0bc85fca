"""One module per warehouse; `open_target` picks one by the URL's scheme."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from triage.warehouse.targets.base import Target, WarehouseUnavailable

if TYPE_CHECKING:
    from triage.settings import WarehouseSettings

SCHEMES = {
    "bigquery": "triage.warehouse.targets.bigquery",
    "redshift": "triage.warehouse.targets.redshift",
    "duckdb": "triage.warehouse.targets.duckdb",
    "parquet": "triage.warehouse.targets.parquet",
}


def open_target(url: str, settings: WarehouseSettings) -> Target:
    """The target named by `url` (`bigquery://PROJECT/DATASET`, `redshift://USER@HOST:PORT/DB`,
    `duckdb:///cx.duckdb`, `parquet:///DIR`); ValueError for an unknown scheme. Each module's
    `open(url, settings)` reads the table prefix and its own options (`settings.bigquery_*`,
    `settings.redshift_*`) from the warehouse settings."""
    scheme = url.partition("://")[0]
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"warehouse URL {url!r}: unknown scheme {scheme!r} (known: {known})")
    module = importlib.import_module(SCHEMES[scheme])
    return module.open(url, settings)


__all__ = ["SCHEMES", "Target", "WarehouseUnavailable", "open_target"]
