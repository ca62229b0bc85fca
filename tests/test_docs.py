"""The README and docs/ as a reader meets them: every link leads somewhere, every setting the code has is
documented (and nothing that does not exist), and they speak of the product alone."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from triage.settings_reference import settings_table

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^#{1,6}\s+(.*)$", line):
            slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
            found.add(slug)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_link_leads_to_a_file_or_heading_that_exists(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code is not linked
    for match in LINK.finditer(text):
        target = match[1] or match[2]
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to {target}: no such file"
        assert linked.is_relative_to(REPO), f"{page.name}: link to {target}: outside the repository"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: link to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_the_docs_speak_of_the_product_alone(page: Path):
    text = page.read_text(encoding="utf-8")
    for outside in ("../shared", "DESIGN.md", "DEVELOPERS.md", "hidden set", "the issue", "this session"):
        assert outside not in text, f"{page.name} mentions {outside!r}"


def test_the_configuration_reference_is_the_settings_model():
    """docs/configuration.md carries the table `python -m triage.settings_reference` writes from the
    settings model: a setting added, renamed or removed without it fails here."""
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    between = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", page, flags=re.S)
    assert between, "docs/configuration.md has no <!-- settings:begin --> ... <!-- settings:end --> table"
    assert between[1] == settings_table(), (
        "docs/configuration.md is out of date: python -m triage.settings_reference"
    )
    documented = set(re.findall(r"`(TRIAGE_[A-Z0-9_]+)`", page))
    assert {name for name in re.findall(r"`(TRIAGE_[A-Z0-9_]+)`", settings_table())} <= documented


def test_the_readme_stays_on_two_hundred_lines():
    """The README is the first screen or two; the reference lives in docs/."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200): move detail to docs/"


def test_the_readme_alert_is_one_the_default_model_sends():
    """Its small print names the model a fresh install judges with (the summary line is left out, as
    Slack leaves out a summary that is a sentence of the message)."""
    from triage.classify.embedded import EmbeddedClassifier
    from triage.settings import ClassifierSettings

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    alert = readme.split("## What a Slack alert says", 1)[1].split("```")[1]
    small_print = alert.strip().splitlines()[-1]
    assert ClassifierSettings.model_fields["backend"].default == "embedded"
    assert small_print.endswith(f"· model {EmbeddedClassifier.name}"), small_print
