"""The page in headless Chromium (Debian's chromium and chromium-driver): every chart draws, offline,
without console errors. A missing browser fails the test, like any other missing component."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.report.conftest import WEEK, fill_surveys, fill_week
from triage.report.html import render_html
from triage.report.queries import build_report
from triage.store import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHARTS = """
return Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const box = svg.getBoundingClientRect();
  const drawn = Array.from(svg.querySelectorAll('rect, circle, polyline')).filter(mark => {
    const b = mark.getBoundingClientRect();
    return b.width > 0 && b.height > 0;
  });
  return {width: box.width, height: box.height, marks: drawn.length,
          section: svg.closest('section').querySelector('h2').textContent};
});
"""

TILES = """
return Array.from(document.querySelectorAll('main > .tiles > .tile')).map(tile => {
  const box = tile.getBoundingClientRect(), page = document.querySelector('main').getBoundingClientRect();
  return {text: tile.innerText, top: Math.round(box.top), inside: box.right <= page.right};
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def test_every_chart_draws_offline_without_console_errors(browser: webdriver.Chrome, tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'week.db'}")
    store.upgrade()
    fill_week(store)
    fill_surveys(store)
    with store.session() as session:
        page = tmp_path / "report.html"
        page.write_text(render_html(build_report(session, WEEK)), encoding="utf-8")
    store.close()

    browser.get(page.as_uri())
    charts = browser.execute_script(CHARTS)

    assert browser.title == "CX health report, last 7 days"
    assert [chart["section"] for chart in charts] == [
        *["Sentiment by channel"] * 3,  # email, chat, no channel
        *["CX scores"] * 3,  # NPS, CSAT and CES answers per week
        "Urgency mix",
        "Categories",
        *["Alerts"] * 2,  # by status, time to alert
        *["LLM tokens and cost"] * 2,  # tokens, cost
        "Degraded classification",
    ]
    assert all(chart["width"] > 300 and chart["height"] > 50 for chart in charts), charts
    marks = {chart["section"]: chart["marks"] for chart in charts}
    # one column segment per non-zero (day, urgency) cell: 10, and 4 days only survey answers made normal
    assert marks["Urgency mix"] == 14
    assert marks["Categories"] == 8  # 6 categories, outage and other both negative and not
    nps = next(chart for chart in charts if chart["section"] == "CX scores")
    assert nps["marks"] == 1 + 3  # the first week's promoter; the second week's three bands
    assert marks["Degraded classification"] == 9  # 8 dots and the line
    assert all(chart["marks"] > 0 for chart in charts), charts
    tiles = browser.execute_script(TILES)
    assert len(tiles) == 7 and len({tile["top"] for tile in tiles}) == 1, tiles  # one row at 1100 px
    assert all(tile["inside"] for tile in tiles), tiles
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
