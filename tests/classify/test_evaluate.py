import json
import subprocess
import sys

import pytest

from triage.classify.evaluate import EvalDataError, evaluate, read_examples
from triage.classify.rules import RulesClassifier
from triage.settings import ClassifierSettings

ROWS = [
    ("The site is down for all users, outage!", "urgent"),
    ("Checkout is down for everyone since 9am", "urgent"),
    ("How do I export invoices?", "normal"),
    ("Love the new dashboard, thanks", "low"),
    ("I cannot log in and need access asap", "high"),
    ("Where can I change my avatar?", "normal"),
]


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(f'"{text}",{label}' for text, label in rows) + "\n")
    return path


def test_urgency_is_scored_as_urgent_versus_not(tmp_path):
    examples = read_examples(write_csv(tmp_path / "u.csv", ROWS), "urgency")
    assert [e.label for e in examples] == ["urgent", "urgent", "normal", "normal", "urgent", "normal"]
    report = evaluate(RulesClassifier(ClassifierSettings().categories), examples, "urgency")
    assert report["n"] == 6 and set(report["per_class"]) == {"normal", "urgent"}
    matrix = report["confusion_matrix"]["rows_true_columns_predicted"]
    assert sum(map(sum, matrix)) == 6
    urgent = report["per_class"]["urgent"]
    assert urgent["support"] == 3 and 0 <= urgent["f1"] <= 1
    assert report["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 6, abs=1e-4)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("body,label\nhi,urgent\n", "missing column(s) text"),
        ("text,label\nhi,critical\n", "u.csv:2: label 'critical' is not a urgency label"),
        ("text,label\n", "no labelled rows"),
    ],
)
def test_bad_csv_files_say_where(tmp_path, content, error):
    path = tmp_path / "u.csv"
    path.write_text(content)
    with pytest.raises(EvalDataError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_examples(path, "urgency")


def test_eval_command_prints_one_json_object(tmp_path):
    rows = [("I hate this, terrible", "negative"), ("Thanks, great help", "positive"), ("Order 5", "neutral")]
    path = write_csv(tmp_path / "s.csv", rows)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "triage",
            "eval",
            str(path),
            "--task",
            "sentiment",
            "--backend",
            "rules",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"accuracy", "macro_f1", "per_class", "n"} <= set(report)
    assert report["n"] == 3 and set(report["per_class"]["negative"]) >= {"precision", "recall", "f1"}


def test_eval_command_reports_a_missing_file_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "triage", "eval", "nope.csv", "--task", "urgency", "--backend", "rules"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2 and "nope.csv" in done.stderr and "Traceback" not in done.stderr
