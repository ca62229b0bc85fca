"""Hot reload of the routing file, on change or on request (SIGHUP), keeping the last good tree.

The worker calls `check()` once per loop: a stat() of the file, nothing more unless it changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from triage.ops import metrics
from triage.routing.tree import RoutingTree, load_routing
from triage.routing.yamlfile import RoutingError

log = logging.getLogger(__name__)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino  # an editor that replaces the file changes st_ino


class RoutingReloader:
    def __init__(self, path: Path, tree: RoutingTree, on_change: Callable[[RoutingTree], None]) -> None:
        """The tree's vocabulary (the configured categories) checks every reloaded file too."""
        self.path = Path(path)
        self.current = tree
        self.on_change = on_change
        self._seen = _signature(self.path)
        self._requested = threading.Event()

    def request(self) -> None:
        """Reload at the next check even if the file looks unchanged (SIGHUP)."""
        self._requested.set()

    def check(self) -> bool:
        """Reload if the file changed or a reload was requested; True when a new tree took effect."""
        signature = _signature(self.path)
        if signature == self._seen and not self._requested.is_set():
            return False
        self._requested.clear()
        self._seen = signature
        try:
            tree = load_routing(self.path, self.current.vocabulary)
        except RoutingError as error:
            metrics.ROUTING_RELOADS.labels("failure").inc()
            log.error("routing file refused, keeping the last good tree: %s", error)
            return False
        self.current = tree
        self.on_change(tree)
        metrics.ROUTING_RELOADS.labels("success").inc()
        log.info("routing file reloaded: %s (%d receivers)", self.path, len(tree.receivers))
        return True
