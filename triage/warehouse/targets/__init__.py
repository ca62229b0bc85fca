"""One module per warehouse; `open_target` picks one by the URL's scheme."""

from __future__ import annotations

import importlib

from triage.warehouse.targets.base import Target, WarehouseUnavailable

SCHEMES = {
    "bigquery": "triage.warehouse.targets.bigquery",
    "redshift": "triage.warehouse.targets.redshift",
    "duckdb": "triage.warehouse.targets.duckdb",
    "parquet": "triage.warehouse.targets.parquet",
}


def open_target(url: str, table_prefix: str = "triage_", **options: object) -> Target:
    """The target named by `url` (`bigquery://PROJECT/DATASET`, `redshift://USER@HOST:PORT/DB`,
    `duckdb:///cx.duckdb`, `parquet:///DIR`); ValueError for an unknown scheme."""
    scheme = url.partition("://")[0]
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"warehouse URL {url!r}: unknown scheme {scheme!r} (known: {known})")
    module = importlib.import_module(SCHEMES[scheme])
    return module.open(url, table_prefix=table_prefix, **options)


__all__ = ["SCHEMES", "Target", "WarehouseUnavailable", "open_target"]
