"""The warehouse side of `triage report --from-warehouse URL` (the option lives in triage/report)."""

from __future__ import annotations

from triage.report.model import Report
from triage.report.queries import build_report
from triage.report.window import Window
from triage.settings import load_settings


class WarehouseError(Exception):
    """A bad URL, the duckdb extra missing, a warehouse that cannot be read: one line for the user."""


def from_warehouse_report(url: str, window: Window) -> Report:
    """The report over the warehouse tables; the extra is imported here, only when asked for."""
    settings = load_settings()
    try:
        from triage.warehouse import report
    except ModuleNotFoundError as error:
        raise WarehouseError(
            f"--from-warehouse: {error.name} is not installed (pip install 'triage[duckdb]')"
        ) from error
    from triage.warehouse.targets.base import WarehouseUnavailable

    try:
        with report.session(url, settings.warehouse.table_prefix) as session:
            return build_report(session, window, settings.llm.daily_budget_usd, oncall_section=False)
    except ValueError as error:
        raise WarehouseError(str(error)) from error
    except WarehouseUnavailable as error:
        raise WarehouseError(f"--from-warehouse: {error}") from error
