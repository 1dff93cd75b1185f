"""The reporter's coverage page in a real browser, on a 360 px phone."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.remote.webdriver import WebDriver

from phonebank.reporter.page import render_page
from tests.browser.conftest import VIEWPORT_WIDTH
from tests.unit.test_reporter_aggregate import NOW_MS
from tests.unit.test_reporter_page import crafted_status


def test_report_page_fits_a_phone(browser: WebDriver, tmp_path: Path, screenshots: Path) -> None:
    """Given the report page of a crafted stream, When a 360 px phone opens it,
    Then nothing sticks out sideways: wide tables scroll inside themselves."""
    page = tmp_path / "report.html"
    page.write_text(render_page(crafted_status().report(NOW_MS)))
    browser.get(page.as_uri())
    assert browser.find_element("tag name", "h1").is_displayed()
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    browser.save_screenshot(str(screenshots / "8-report.png"))
    assert int(scroll_width) <= VIEWPORT_WIDTH
