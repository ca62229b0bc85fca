import json

import pytest

from tests.classify.test_commands import triage
from triage.classify.categories import category_names
from triage.classify.evaluate import (
    EvalDataError,
    Example,
    LabelledFile,
    evaluate,
    expected_calibration_error,
    read_examples,
)
from triage.classify.rules import RulesClassifier
from triage.message import SupportMessage
from triage.settings import ClassifierSettings

TWELVE = category_names(ClassifierSettings())

ROWS = [
    ("The site is down for all users, outage!", "urgent"),
    ("Checkout is down for everyone since 9am", "urgent"),
    ("How do I export invoices?", "normal"),
    ("Love the new dashboard, thanks", "low"),
    ("I cannot log in and need access asap", "high"),
    ("Where can I change my avatar?", "normal"),
]


def eval_rules(*args: str, cwd):
    """`triage eval ARGS --backend rules` as a person runs it."""
    return triage("eval", *args, "--backend", "rules", cwd=cwd, timeout=120)


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(f'"{text}",{label}' for text, label in rows) + "\n")
    return path


def test_urgency_is_scored_as_urgent_versus_not(tmp_path):
    data = read_examples(write_csv(tmp_path / "u.csv", ROWS), "urgency")
    assert [e.label for e in data.examples] == ["urgent", "urgent", "normal", "normal", "urgent", "normal"]
    report = evaluate(RulesClassifier(TWELVE), data, "urgency")
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
    done = eval_rules(str(path), "--task", "sentiment", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"accuracy", "macro_f1", "per_class", "n"} <= set(report)
    assert report["n"] == 3 and set(report["per_class"]["negative"]) >= {"precision", "recall", "f1"}


def test_eval_command_reports_a_missing_file_in_one_line(tmp_path):
    done = eval_rules("nope.csv", "--task", "urgency", cwd=tmp_path)
    assert done.returncode == 2 and "nope.csv" in done.stderr and "Traceback" not in done.stderr


def test_macro_f1_averages_over_the_classes_that_occur(tmp_path):
    data = read_examples(
        write_csv(tmp_path / "s.csv", [("I hate this, terrible", "negative")] * 2), "sentiment"
    )
    report = evaluate(RulesClassifier(TWELVE), data, "sentiment")
    assert (
        report["accuracy"] == 1.0 and report["macro_f1"] == 1.0 and list(report["per_class"]) == ["negative"]
    )


def test_rows_without_text_are_counted_and_reported(tmp_path):
    path = write_csv(tmp_path / "u.csv", [*ROWS[:2], ("  ", "urgent"), *ROWS[2:3], ("", "normal")])
    data = read_examples(path, "urgency")
    assert len(data.examples) == 3 and data.empty_lines == [4, 6]
    report = evaluate(RulesClassifier(TWELVE), data, "urgency")
    assert report["n"] == 3 and report["empty_rows"] == 2 and report["empty_row_lines"] == [4, 6]


def test_the_calibration_error_is_the_gap_between_confidence_and_accuracy():
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.95] * 4, [True, False, True, False]) == pytest.approx(0.45)
    assert expected_calibration_error([0.15, 0.95], [False, True]) == pytest.approx((0.15 + 0.05) / 2)


def test_category_eval_with_errors_lists_the_mistakes(tmp_path):
    rows = [
        ("I was charged twice on my invoice", "billing"),
        ("Please refund my money back", "refund"),
        ("The site is down, outage for all users", "outage"),
        ("hello there", "praise"),  # the rules say `other`: a mistake to list
    ]
    path = write_csv(tmp_path / "c.csv", rows)
    done = eval_rules(str(path), "--task", "category", "--errors", "5", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["task"] == "category" and report["accuracy"] == 0.75
    assert set(report["per_class"]) == {"billing", "refund", "outage", "praise", "other"}
    assert report["most_confused"] == [{"label": "praise", "predicted": "other", "count": 1}]
    [error] = report["errors"]
    # the rules' `confidence` is the urgency's: no ranking by it, in file order
    assert error == {
        "line": 5,
        "text": "hello there",
        "label": "praise",
        "predicted": "other",
        "confidence": None,
    }
    assert report["errors_ranked_by"] == "line: rules gives no category confidence"
    printed = eval_rules("c.csv", "--task", "category", "--errors", "1", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert "most confused: praise → other (1)" in printed.stdout and "hello there" in printed.stdout
    assert "mistakes, by line: rules gives no category confidence" in " ".join(printed.stdout.split())


def test_category_mistakes_are_ranked_by_the_category_confidence_not_the_urgency_one():
    from triage.classify.embedded import EmbeddedClassifier, message_text

    classifier = EmbeddedClassifier.load(ClassifierSettings())
    rows = [
        ("The site is down for all users, outage!", "praise"),
        ("I was charged twice on my invoice, refund me now", "shipping"),
        ("Where can I change my avatar?", "outage"),
        ("Love the new dashboard, thanks", "billing"),
        ("My parcel never arrived, where is it?", "refund"),
    ]
    data = LabelledFile([Example(text, label, line) for line, (text, label) in enumerate(rows, 2)])
    report = evaluate(classifier, data, "category", errors=5)
    assert report["errors_ranked_by"] == "category confidence"
    errors = report["errors"]
    assert len(errors) == 5  # every label is wrong on purpose
    for error in errors:
        text = rows[error["line"] - 2][0]
        row = classifier.encoder.encode([message_text(SupportMessage(id="x", body=text))])
        probabilities = classifier.category.probabilities(row, [text])[0]
        assert error["confidence"] == round(float(probabilities.max()), 3)  # the category head's own
        assert classifier.category.classes[int(probabilities.argmax())] == error["predicted"]
    confidences = [error["confidence"] for error in errors]
    assert confidences == sorted(confidences, reverse=True)
    urgency = [classifier.classify(SupportMessage(id="x", body=text)).confidence for text, _ in rows]
    assert sorted(confidences) != sorted(urgency)  # what the ranking used before


def test_a_subject_column_is_read_as_the_message_subject(tmp_path):
    """A helpdesk export has a subject and a description: the classifier reads both, as in the worker."""
    path = tmp_path / "s.csv"
    path.write_text(
        "subject,text,label\n"
        '"Refund for order 1182","Hi, see the subject. Thanks, Ana",refund\n'
        ',"Please refund my money back",refund\n'
    )
    [with_subject, without] = read_examples(path, "category").examples
    assert (with_subject.subject, without.subject) == ("Refund for order 1182", None)
    report = evaluate(RulesClassifier(TWELVE), read_examples(path, "category"), "category")
    assert report["accuracy"] == 1.0, report["most_confused"]
