"""`triage eval --backend cascade` and `triage eval --compare embedded,cascade,llm`, as a person runs
them, against the LLM stand-in (which records every request)."""

import json
from pathlib import Path

import pytest

from tests.classify.test_commands import triage
from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).parents[2]
SUPPORT = str(REPO / "data" / "support_examples.csv")
ROWS = 20


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def llm_env(server: FakeOpenAI) -> dict[str, str]:
    return {
        "TRIAGE_LLM__BASE_URL": server.base_url,
        "TRIAGE_LLM__API_KEY": "k",
        "TRIAGE_LLM__MODEL": "gpt-4o-mini",
        "TRIAGE_WORKER__CONCURRENCY": "4",
    }


def test_eval_compare_prints_the_backends_side_by_side(server):
    done = triage(
        "eval",
        "--compare",
        "embedded,cascade,llm",
        SUPPORT,
        "--limit",
        str(ROWS),
        cwd=REPO,
        env=llm_env(server),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if "embedded" in line and "cascade" in line)
    assert header.index("embedded") < header.index("cascade") < header.index("llm")
    sent = next(line for line in lines if "sent to the LLM" in line).split()
    shares = [float(cell.rstrip("%")) for cell in sent if cell.endswith("%")]
    assert shares[0] == 0.0 and shares[2] == 100.0 and 0 < shares[1] < 100
    cascade_asked = round(shares[1] * ROWS / 100)
    assert len(server.requests) == cascade_asked + ROWS  # the cascade's and every one of llm's
    for name in ("urgent recall", "called high/urgent", "cost / 1,000 messages", "CPU s / 1,000 messages"):
        assert any(line.lstrip().startswith(("│ " + name, name)) for line in lines), name


def test_eval_backend_cascade_reports_the_share_sent_to_the_llm_and_the_cost(server):
    done = triage(
        "eval",
        SUPPORT,
        "--task",
        "urgency",
        "--backend",
        "cascade",
        "--limit",
        str(ROWS),
        "--json",
        cwd=REPO,
        env=llm_env(server),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"].startswith("cascade:")
    assert report["llm_share"] == len(server.requests) / ROWS and 0 < report["llm_share"] < 1
    assert report["llm_share"] >= report["flagged_share"] > 0  # the stand-in calls everything high
    assert report["cost_usd"] > 0 and report["cost_usd_per_1000"] == pytest.approx(
        1000 * report["cost_usd"] / ROWS, rel=1e-3
    )


def test_an_unknown_backend_in_compare_is_one_line(server):
    done = triage("eval", "--compare", "embedded,gpt", SUPPORT, cwd=REPO, env=llm_env(server))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("error: --compare: 'gpt' unknown")
