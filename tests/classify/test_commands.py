"""`triage classify`, `train --task category` and `eval --task category`, as a person runs them."""

import json
import os
import socket
import subprocess
import sys

import pytest

from triage.classify.embedded import Head


def triage(*args: str, cwd, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "triage", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_an_empty_message_is_one_line_and_exit_2(tmp_path, text):
    done = triage("classify", text, "--backend", "rules", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "error: the message is empty"


def test_a_lone_surrogate_is_the_workers_one_line_not_a_traceback(tmp_path):
    # a shell's $'\ud83d' hands over the bytes of half a UTF-16 pair, not UTF-8
    done = subprocess.run(
        [sys.executable, "-m", "triage", "classify", b"App crashed \xed\xa0\xbd again", "--backend", "rules"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith("error: invalid_unicode: body: unpaired surrogate \\udced at character 12")
    assert "Traceback" not in done.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_llm_answers_from_the_fallback_but_the_command_exits_3(tmp_path):
    env = {
        "TRIAGE_LLM__BASE_URL": f"http://127.0.0.1:{closed_port()}/v1",
        "TRIAGE_LLM__MAX_ATTEMPTS": "1",
        "TRIAGE_LLM__TIMEOUT_S": "2",
        "TRIAGE_CLASSIFIER__FALLBACK": "rules",
    }
    done = triage("classify", "The site is down for all users", "--backend", "llm", cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["degraded"] is True and json.loads(done.stdout)["model"] == "rules"
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("error: the llm backend did not answer") and "rules" in line


def test_an_llm_without_a_key_says_the_key_is_empty(tmp_path):
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as llm:
        llm.valid_keys = {"the-key"}  # as OpenAI: no key, 401
        env = {
            "TRIAGE_LLM__BASE_URL": llm.base_url,
            "TRIAGE_LLM__API_KEY": "",
            "TRIAGE_LLM__MAX_ATTEMPTS": "1",
            "TRIAGE_CLASSIFIER__FALLBACK": "rules",
        }
        done = triage("classify", "The site is down for all users", "--backend", "llm", cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert line == (
        f"error: the llm backend did not answer ({llm.base_url}; TRIAGE_LLM__API_KEY is empty); "
        "this answer is from rules"
    )


CATEGORY_ROWS = [
    *[(f"My card {n} has not arrived yet, when will it come?", "card_arrival") for n in range(6)],
    *[(f"I want to top up my account with {n}0 euros, how?", "top_up") for n in range(6)],
    *[(f"Why was I charged a fee of {n} dollars on my transfer?", "transfer_fee") for n in range(6)],
]
HELD_OUT = [
    ("My new card still has not arrived", "card_arrival"),
    ("How do I top up my balance?", "top_up"),
    ("What is this fee on my transfer?", "transfer_fee"),
    ("", "top_up"),
]


def write(path, rows):
    path.write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in rows), encoding="utf-8")


def test_train_a_category_head_on_any_label_set_then_eval_it(tmp_path):
    write(tmp_path / "history.csv", CATEGORY_ROWS)
    write(tmp_path / "test.csv", HELD_OUT)
    trained = triage("train", "history.csv", "--task", "category", "--out", "heads", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "saved heads/category.npz: 18 rows" in trained.stdout and "3 categories" in trained.stdout
    head = Head.load(tmp_path / "heads" / "category.npz")
    assert head.classes == ["card_arrival", "top_up", "transfer_fee"] and head.vocabulary is not None
    env = {"TRIAGE_CLASSIFIER__MODEL_DIR": str(tmp_path / "heads")}
    done = triage("eval", "test.csv", "--task", "category", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n"] == 3 and report["empty_rows"] == 1 and report["accuracy"] == 1.0
    assert set(report["per_class"]) == {"card_arrival", "top_up", "transfer_fee"}
    assert {"macro_f1", "most_confused", "errors", "confusion_matrix"} <= set(report)
    # the other heads come from the package: urgency and sentiment still work with the team's categories
    classified = triage("classify", "My card has not arrived after two weeks", cwd=tmp_path, env=env)
    assert classified.returncode == 0, classified.stderr
    assert json.loads(classified.stdout)["category"] == "card_arrival"
