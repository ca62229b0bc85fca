import os

from prometheus_client import REGISTRY

from triage.routing import load_routing
from triage.routing.reload import RoutingReloader

GOOD = "receivers:\n  - name: {name}\n    console: {{}}\nroute:\n  receiver: {name}\n"


def write(path, text, bump):
    path.write_text(text)
    os.utime(path, ns=(bump, bump))  # a distinct mtime even within one clock tick


def failures() -> float:
    return REGISTRY.get_sample_value("triage_routing_reloads_total", {"result": "failure"}) or 0.0


def test_a_changed_file_is_reloaded_and_an_invalid_one_is_refused(tmp_path):
    path = tmp_path / "routing.yaml"
    write(path, GOOD.format(name="first"), 1_000_000_000)
    applied = []
    reloader = RoutingReloader(path, load_routing(path), applied.append)
    assert reloader.check() is False  # unchanged

    before = failures()
    write(path, "receivers: [oops\n", 2_000_000_000)
    assert reloader.check() is False
    assert failures() == before + 1
    assert reloader.current.route({}) == ["first"] and applied == []  # the last good tree stays

    write(path, GOOD.format(name="second"), 3_000_000_000)
    assert reloader.check() is True
    assert reloader.current.route({}) == ["second"] and [t.route({}) for t in applied] == [["second"]]


def test_a_requested_reload_happens_even_when_the_file_looks_unchanged(tmp_path):
    path = tmp_path / "routing.yaml"
    write(path, GOOD.format(name="first"), 1_000_000_000)
    applied = []
    reloader = RoutingReloader(path, load_routing(path), applied.append)
    reloader.request()
    assert reloader.check() is True and len(applied) == 1
    assert reloader.check() is False


def test_a_deleted_file_keeps_the_last_good_tree(tmp_path):
    path = tmp_path / "routing.yaml"
    write(path, GOOD.format(name="first"), 1_000_000_000)
    reloader = RoutingReloader(path, load_routing(path), lambda tree: None)
    path.unlink()
    assert reloader.check() is False and reloader.current.route({}) == ["first"]
