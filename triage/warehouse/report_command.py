"""The warehouse side of `triage report --from-warehouse URL` (the option lives in triage/report)."""

from __future__ import annotations

from triage.report.model import Report
from triage.report.window import Window
from triage.settings import load_settings

WarehouseError = (ValueError, RuntimeError)  # a bad URL, the duckdb extra missing, an unreadable warehouse


def from_warehouse_report(url: str, window: Window) -> Report:
    """The report over the warehouse tables; the extra is imported here, only when asked for."""
    from triage.report.queries import build_report

    settings = load_settings()
    try:
        from triage.warehouse import report
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"--from-warehouse: {error.name} is not installed (pip install 'triage[duckdb]')"
        ) from error
    from triage.warehouse.targets.base import WarehouseUnavailable

    try:
        with report.session(url, settings.warehouse.table_prefix) as session:
            return build_report(session, window, settings.llm.daily_budget_usd)
    except WarehouseUnavailable as error:
        raise RuntimeError(f"--from-warehouse: {error}") from error
