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
EXTRAS = {"bigquery": "bigquery", "redshift": "redshift", "duckdb": "duckdb", "parquet": "duckdb"}


def open_target(url: str, settings: WarehouseSettings) -> Target:
    """The target named by `url` (`bigquery://PROJECT/DATASET`, `redshift://USER@HOST:PORT/DB`,
    `duckdb:///cx.duckdb`, `parquet:///DIR`); ValueError for an unknown scheme or a malformed URL,
    RuntimeError when the scheme's extra is not installed. Each module's `open(url, settings)` reads the
    table prefix and its own options (`settings.bigquery_*`, `settings.redshift_*`) from the warehouse
    settings."""
    scheme = url.partition("://")[0]
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"warehouse URL {url!r}: unknown scheme {scheme!r} (known: {known})")
    try:
        module = importlib.import_module(SCHEMES[scheme])
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("triage"):
            raise
        raise RuntimeError(
            f"warehouse {scheme}://: {error.name} is not installed (pip install 'triage[{EXTRAS[scheme]}]')"
        ) from error
    return module.open(url, settings)


__all__ = ["SCHEMES", "Target", "WarehouseUnavailable", "open_target"]
