"""`triage silence list|expire` as an operator reads them, and bad silences or on-call routing refused
with one line naming the problem and where (file and line for the routing file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triage.cli import app

REPO = Path(__file__).resolve().parents[2]
GOOD = (REPO / "config" / "routing-oncall.yaml").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.chdir(REPO)  # the project's categories


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def refusal(*args: str) -> str:
    """The one line a refused command prints (exit 2)."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_silence_list_shows_each_active_silence_and_expire_ends_it():
    first = invoke("silence", "add", "category = outage", "customer.tier != enterprise", "--for", "2h",
        "--comment", "known: payment provider down", "--by", "ana").output.strip()  # fmt: skip
    second = invoke("silence", "add", "urgency = low", "--for", "30m").output.strip()
    listed = invoke("silence", "list")
    assert listed.exit_code == 0
    rows = [line for line in listed.output.splitlines() if first in line or second in line]
    assert second in rows[0] and first in rows[1]  # ending soonest first
    assert "category = outage and customer.tier != enterprise" in rows[1]
    assert "known: payment provider down" in rows[1] and "ana" in rows[1] and "(in 1h59m)" in rows[1]
    assert listed.output.rstrip().endswith("2 active silences")

    expired = invoke("silence", "expire", first)
    assert (expired.exit_code, expired.output) == (0, f"expired {first}\n")
    assert first not in invoke("silence", "list").output
    ended = [json.loads(line) for line in invoke("silence", "list", "--all", "--json").output.splitlines()]
    assert {(s["id"], s["active"]) for s in ended} == {(first, False), (second, True)}
    assert refusal("silence", "expire", first) == (
        f"error: no active silence with id '{first}' (see `triage silence list`)"
    )


@pytest.mark.parametrize(
    ("matcher", "reason"),
    [
        ("categroy = outage", "categroy"),  # a field typo
        ("category = outtage", "outtage"),  # a value no category has
        ("category == outage", "category == outage"),  # not an operator
    ],
)
def test_a_silence_with_a_typo_is_refused_in_one_line(matcher: str, reason: str):
    line = refusal("silence", "add", matcher, "--for", "1h")
    assert line.startswith("error: ") and reason in line
    assert invoke("silence", "list").output.strip() == "0 active silences"


def test_a_silence_with_a_bad_duration_is_refused():
    assert refusal("silence", "add", "category = outage", "--for", "soon").startswith("error: --for: ")


@pytest.mark.parametrize(
    ("good", "bad", "reason"),
    [
        ("escalate: {after: 10m, to: pager}", "escalate: {after: 10m, to: pagr}", "receiver 'pagr'"),
        ("escalate: {after: 10m, to: pager}", "escalate: {after: ten minutes, to: pager}", "after"),
        ("escalate: {after: 10m, to: pager}", "escalate: {after: 0s, to: pager}", "longer than 0s"),
        ("source_matchers: ['category = outage']", "source_matchers: ['categroy = outage']", "categroy"),
        ("target_matchers: ['category = outage']", "target_matchers: ['category = outtage']", "outtage"),
        ("equal: [category]", "equal: [categroy]", "categroy"),
        ("routing_key: PAGERDUTY_ROUTING_KEY", "routing_key: u+Zk3a9sQ1secretvalue", "routing_key"),
    ],
)
def test_a_mistake_in_the_oncall_routing_is_refused_with_its_line(
    tmp_path: Path, good: str, bad: str, reason: str
):
    assert good in GOOD
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD.replace(good, bad, 1), encoding="utf-8")
    line_number = next(n for n, line in enumerate(GOOD.splitlines(), 1) if good in line)
    line = refusal("routes", "check", str(path))
    assert line.startswith(f"error: {path}:{line_number}: ") and reason in line
    assert "secretvalue" not in line  # a secret written by mistake is not repeated
