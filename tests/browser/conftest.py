"""Fixtures of the browser tests: headless Debian Chromium at 360 px, and a gateway.

The gateway serves in this process on an ephemeral port, on the real redis-server (a
namespace per test), with the real clock and a calling window of the whole day, so the
page's countdown and the callee's clock are the real ones. Chromium is Debian's
``chromium`` driven through ``chromedriver`` (``chromium-driver``) by selenium; where
they are absent the tests skip, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from phonebank.gateway.cli import build_gateway, loop_transport, serve
from phonebank.gateway.tokens import mint
from phonebank.leases.client import LeaseClient
from phonebank.local.demo import ANYTIME_WINDOW
from phonebank.settings import Settings
from tests.integration.lease_helpers import fill

#: the phone-sized viewport the page must work at (CSS pixels)
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 360, 780
#: seconds a page element may take to appear
WAIT_SECONDS = 10
#: seconds a test volunteer token lives
TOKEN_TTL_SECONDS = 3600
#: folder for the screenshots when set (else the test's tmp_path)
SCREENSHOTS_ENV = "PHONEBANK_BROWSER_SCREENSHOTS"
#: numbers queued for the page to take
QUEUED = [9_161_234_567, 9_161_234_568, 9_161_234_569]
#: Moscow's wall-clock hour from which the test region is put an hour further east, so
#: the all-day window (which ends at 23:59) never closes under a test
LATE_HOUR = 23


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver; skip (fail under CI) without them."""
    found = _chromium()
    if found is None:
        reason = (
            "chromium and chromedriver are not installed (Debian packages chromium and "
            "chromium-driver; deploy/local/bootstrap.sh installs them)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def browser(chromium_paths: tuple[str, str]) -> Iterator[WebDriver]:
    """One headless Chromium for the session, a 360 px wide phone viewport, Russian."""
    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--lang=ru-RU",
        f"--window-size={VIEWPORT_WIDTH},{VIEWPORT_HEIGHT}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": VIEWPORT_WIDTH,
            "height": VIEWPORT_HEIGHT,
            "deviceScaleFactor": 1,
            "mobile": True,
        },
    )
    try:
        yield driver
    finally:
        driver.quit()


@dataclass(frozen=True)
class PageGateway:
    """A gateway serving the page, and what a test needs to talk about it."""

    url: str
    settings: Settings
    client: redis.Redis
    #: the callee's time zone of the test region
    zone: str

    def token(self, volunteer: str) -> str:
        """A valid bearer token for ``volunteer``."""
        secret = self.settings.volunteer_secret.get_secret_value()
        return mint(secret, volunteer, self.settings.campaign, TOKEN_TTL_SECONDS)


def _region_zone() -> str:
    moscow = dt.datetime.now(ZoneInfo("Europe/Moscow"))
    return "Asia/Yekaterinburg" if moscow.hour >= LATE_HOUR else "Europe/Moscow"


@pytest.fixture
def page_gateway(settings: Settings, redis_client: redis.Redis) -> Iterator[PageGateway]:
    """A gateway on the real clock, calling allowed all day, three Moscow numbers queued."""
    allday = settings.model_copy(
        update={
            "calling_window_start": dt.time.fromisoformat(ANYTIME_WINDOW[0]),
            "calling_window_end": dt.time.fromisoformat(ANYTIME_WINDOW[1]),
        }
    )
    fill(allday, redis_client, "RU-MOW", QUEUED)
    zone = _region_zone()
    transport = loop_transport(allday, redis_client)
    leases = LeaseClient(allday, redis_client, {"RU-MOW": (zone,)}, transport=transport)
    gateway = build_gateway(allday, client=redis_client, leases=leases)
    server = serve(gateway, allday, "127.0.0.1", 0)
    try:
        yield PageGateway(f"http://127.0.0.1:{server.port}", allday, redis_client, zone)
    finally:
        server.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the test's screenshots go."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
