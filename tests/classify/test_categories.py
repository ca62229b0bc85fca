"""The categories file: read, checked line by line, selected by TRIAGE_CLASSIFIER__CATEGORIES."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from triage.classify.categories import CategoriesError, category_names, load_categories
from triage.settings import ClassifierSettings

ROOT = Path(__file__).resolve().parents[2]
TWELVE = [
    "billing",
    "outage",
    "bug",
    "account_access",
    "shipping",
    "refund",
    "cancellation",
    "feature_request",
    "how_to",
    "praise",
    "security",
    "other",
]
GOOD = """categories:
  - name: billing
    description: invoices and charges
    examples: ["I was billed twice", "¿Dónde está mi factura?"]
  - name: outage
    description: the service is down
    examples:
      - "Nothing loads for anyone"
      - "Tout est en panne"
"""


def settings_for(tmp_path: Path, text: str, **overrides) -> ClassifierSettings:
    path = tmp_path / "categories.yaml"
    path.write_text(text, encoding="utf-8")
    return ClassifierSettings(categories_file=path, **overrides)


def test_the_default_file_keeps_the_twelve_names_with_descriptions_and_examples_in_five_languages():
    categories = load_categories(ClassifierSettings(categories_file=ROOT / "config/categories.yaml"))
    assert [c.name for c in categories] == TWELVE
    assert all(c.description and len(c.examples) >= 5 for c in categories)


def test_the_packaged_copy_matches_the_config_file():
    packaged = ROOT / "triage/defaults/categories.yaml"
    assert packaged.read_text(encoding="utf-8") == (ROOT / "config/categories.yaml").read_text(
        encoding="utf-8"
    )


def test_outside_a_checkout_the_packaged_file_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = ClassifierSettings()
    assert settings.categories_path() == ROOT / "triage/defaults/categories.yaml"
    assert category_names(settings) == TWELVE


def test_a_good_file_is_read(tmp_path):
    [billing, outage] = load_categories(settings_for(tmp_path, GOOD))
    assert billing.name == "billing" and billing.examples == ("I was billed twice", "¿Dónde está mi factura?")
    assert outage.description == "the service is down" and len(outage.examples) == 2


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (GOOD.replace("  - name: outage", "  - name: billing"), 5, "category 'billing' is defined twice"),
        (GOOD.replace("    description: the service is down\n", ""), 5, "category without `description`"),
        (
            GOOD.replace('examples: ["I was billed twice", "¿Dónde está mi factura?"]', 'examples: ["x"]'),
            4,
            "category 'billing' needs at least 2 examples",
        ),
        (
            GOOD.replace("    description: invoices and charges", "    descripton: invoices and charges"),
            3,
            "unknown key 'descripton'",
        ),
        (GOOD.replace("name: outage", "name: Out Age"), 5, "name 'Out Age' must be lower case"),
        (GOOD.replace('      - "Tout est en panne"', '      - "Tout est en panne'), 9, "not valid YAML"),
        ("categories: billing\n", 1, "`categories` must be a non-empty list"),
        (
            GOOD.replace('      - "Nothing loads for anyone"', "      - {text: x}"),
            8,
            "example must be non-empty text",
        ),
    ],
)
def test_a_bad_file_is_refused_with_its_line(tmp_path, text, line, reason):
    with pytest.raises(CategoriesError) as raised:
        load_categories(settings_for(tmp_path, text))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'categories.yaml'}:{line}: ") and reason in message
    assert "\n" not in message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CategoriesError, match=r"nope\.yaml"):
        load_categories(ClassifierSettings(categories_file=tmp_path / "nope.yaml"))


def test_the_categories_setting_selects_names_of_the_file(tmp_path):
    assert [c.name for c in load_categories(settings_for(tmp_path, GOOD, categories=["outage"]))] == [
        "outage"
    ]
    with pytest.raises(
        CategoriesError, match=r"TRIAGE_CLASSIFIER__CATEGORIES: 'outgae' not in .*billing, outage"
    ):
        load_categories(settings_for(tmp_path, GOOD, categories=["outgae"]))


def test_category_names_are_the_classes_of_a_trained_head_when_there_is_one(tmp_path):
    from triage.classify.embedded import Head

    settings = settings_for(tmp_path, GOOD, model_dir=tmp_path)
    assert category_names(settings) == ["billing", "outage"]
    Head(["card_arrival", "top_up"], np.zeros((2, 4), np.float32), np.zeros(2, np.float32)).save(
        tmp_path / "category.npz", note="test"
    )
    assert category_names(settings) == ["card_arrival", "top_up"]


def test_a_bad_categories_file_stops_start_up_with_its_line(tmp_path):
    (tmp_path / "bad.yaml").write_text(GOOD.replace("name: outage", "name: billing"), encoding="utf-8")
    env = {**os.environ, "TRIAGE_CLASSIFIER__CATEGORIES_FILE": str(tmp_path / "bad.yaml")}
    done = subprocess.run(
        [sys.executable, "-m", "triage", "classify", "The site is down", "--backend", "rules"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{tmp_path / 'bad.yaml'}:5: category 'billing' is defined twice" in done.stderr.replace("\n", "")


def test_the_embedded_backend_learns_the_files_categories_from_their_examples(tmp_path):
    from triage.classify.embedded import EmbeddedClassifier
    from triage.message import SupportMessage

    text = """categories:
  - name: payouts
    description: money we pay out to sellers, payout schedules and missing payouts
    examples: ["My payout for last week never arrived", "¿Cuándo recibo el pago de mis ventas?"]
  - name: kyc
    description: identity verification, passports, documents we ask for
    examples: ["Why do you need a copy of my passport?", "Meine Identitätsprüfung hängt seit Tagen"]
"""
    classifier = EmbeddedClassifier.load(settings_for(tmp_path, text))
    assert classifier.category.classes == ["kyc", "payouts"]

    def category(body: str) -> str:
        return classifier.classify(SupportMessage(id="c", body=body)).category

    assert category("Le virement de mes ventes n'est jamais arrivé sur mon compte") == "payouts"
    assert category("Você pode verificar meu documento de identidade? Enviei ontem.") == "kyc"
