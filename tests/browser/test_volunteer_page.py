"""The volunteer page in a real browser: headless Chromium, 360 px wide, in Russian."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from phonebank.leases import dnc
from phonebank.leases.keys import KeyScheme
from tests.browser.conftest import VIEWPORT_WIDTH, WAIT_SECONDS, PageGateway

pytestmark = pytest.mark.integration

#: a Russian mobile number as the page groups it for reading
GROUPED = re.compile(r"^\+7 \d{3} \d{3}-\d{2}-\d{2}$")


def _visible(driver: WebDriver, element_id: str) -> WebElement:
    return WebDriverWait(driver, WAIT_SECONDS).until(
        ec.visibility_of_element_located((By.ID, element_id))
    )


def _text_in(driver: WebDriver, element_id: str, text: str) -> None:
    WebDriverWait(driver, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element((By.ID, element_id), text)
    )


def _by_id(driver: WebDriver, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def _outcome(driver: WebDriver, code: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'[data-outcome="{code}"]')


def _fits_the_width(driver: WebDriver) -> bool:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    return int(width) <= VIEWPORT_WIDTH


def _fresh(driver: WebDriver, url: str) -> None:
    """A blank page of the gateway's origin with nothing stored."""
    driver.get(url + "/healthz")
    driver.execute_script("localStorage.clear()")


def _take_number(driver: WebDriver) -> str:
    _by_id(driver, "get").click()
    _visible(driver, "call")
    number: str = _by_id(driver, "number").text
    return number


def test_sign_in_by_link_take_a_number_survive_a_reload_and_take_the_next(
    browser: WebDriver, page_gateway: PageGateway, screenshots: Path
) -> None:
    """Given a volunteer who opens the sign-in link on a 360 px phone, in Russian,
    When they read the guideline, take a number, reload, and record an outcome,
    Then each step shows what it should and the next number comes."""
    driver = browser
    _fresh(driver, page_gateway.url)
    # When the volunteer opens the link with the token in the fragment
    driver.get(f"{page_gateway.url}/#token={page_gateway.token('vol-browser')}")
    get = _visible(driver, "get")
    # Then they are signed in, the token is gone from the address bar, the page is Russian
    assert "token" not in driver.current_url
    assert driver.execute_script("return document.documentElement.lang") == "ru"
    assert get.text == "Получить номер"
    driver.save_screenshot(str(screenshots / "1-ready.png"))
    # When they ask for a number, the guideline and the safety checklist come first
    get.click()
    _visible(driver, "briefing")
    guideline = _by_id(driver, "briefing-guideline")
    assert guideline.find_elements(By.CSS_SELECTOR, "h2"), "the guideline is rendered HTML"
    assert "#" not in guideline.text.split("\n")[0]
    assert "Telegram" in _by_id(driver, "briefing").text
    assert _fits_the_width(driver)
    driver.save_screenshot(str(screenshots / "2-briefing.png"))
    # And once acknowledged, the number is shown grouped, with its call links
    _by_id(driver, "acknowledge").click()
    _visible(driver, "call")
    number = _by_id(driver, "number").text
    assert GROUPED.match(number), number
    digits = re.sub(r"\D", "", number)
    assert _by_id(driver, "whatsapp").get_attribute("href") == f"https://wa.me/{digits}"
    assert _by_id(driver, "telegram").get_attribute("href") == f"https://t.me/+{digits}"
    assert _by_id(driver, "dial").get_attribute("href") == f"tel:+{digits}"
    assert _by_id(driver, "region").text == "Москва"
    assert re.match(r"^\d\d:\d\d, [а-я]+$", _by_id(driver, "localtime").text)
    assert re.match(r"^1[0-5]:\d\d$", _by_id(driver, "countdown").text)
    assert _fits_the_width(driver)
    driver.save_screenshot(str(screenshots / "3-call.png"))
    # When the page is reloaded, the same number is still theirs
    driver.refresh()
    _visible(driver, "call")
    assert _by_id(driver, "number").text == number
    # And a tab that stored nothing of the lease (a second tab) recovers it from /me
    driver.execute_script("localStorage.removeItem('phonebank.lease')")
    driver.refresh()
    _visible(driver, "call")
    assert _by_id(driver, "number").text == number
    _text_in(driver, "status", "восстановлен")
    # When they record an outcome, they are thanked and can take the next number
    _outcome(driver, "no_answer").click()
    _text_in(driver, "status", "Записано")
    driver.save_screenshot(str(screenshots / "4-recorded.png"))
    following = _take_number(driver)
    # Then it is another number, shown without the guideline again
    assert GROUPED.match(following) and following != number
    driver.save_screenshot(str(screenshots / "5-next.png"))


def test_do_not_call_asks_first_and_a_double_tap_takes_one_number(
    browser: WebDriver, page_gateway: PageGateway, screenshots: Path
) -> None:
    """Given a signed-in volunteer who has acknowledged the guideline,
    When they tap "get a number" twice at once and then "do not call",
    Then one number is leased, and "do not call" is only sent once confirmed."""
    driver = browser
    _fresh(driver, page_gateway.url)
    driver.execute_script(
        "localStorage.setItem(arguments[0], arguments[1])",
        "phonebank.acknowledged",
        '["calm-conversation@1"]',
    )
    driver.get(f"{page_gateway.url}/#token={page_gateway.token('vol-double')}")
    _visible(driver, "get")
    # When the button is tapped twice in the same instant
    driver.execute_script("const b = document.getElementById('get'); b.click(); b.click();")
    _visible(driver, "call")
    # Then the volunteer holds exactly one lease
    holders = [
        key
        for key in page_gateway.client.scan_iter(f"{page_gateway.settings.key_prefix}:*holders*")
    ]
    assert sum(page_gateway.client.hlen(key) for key in holders) == 1
    # When "do not call" is tapped, a confirmation appears and nothing is sent yet
    _outcome(driver, "do_not_call").click()
    confirm = _visible(driver, "dnc-confirm")
    assert "никто и никогда" in confirm.text
    driver.save_screenshot(str(screenshots / "6-dnc-confirm.png"))
    assert _by_id(driver, "call").is_displayed()
    # And once confirmed it is recorded
    _by_id(driver, "dnc-yes").click()
    _text_in(driver, "status", "Записано")


def test_callback_is_picked_in_the_callees_time_and_english_is_one_tap_away(
    browser: WebDriver, page_gateway: PageGateway, screenshots: Path
) -> None:
    """Given a volunteer on a call with a callee in Moscow,
    When they pick a callback time from the offered list and record it,
    Then the times were the callee's wall clock, and the number is due at that instant;
    and the language switch turns the page into English."""
    driver = browser
    _fresh(driver, page_gateway.url)
    driver.execute_script(
        "localStorage.setItem(arguments[0], arguments[1])",
        "phonebank.acknowledged",
        '["calm-conversation@1"]',
    )
    driver.get(f"{page_gateway.url}/#token={page_gateway.token('vol-callback')}")
    _take_number(driver)
    # When "asked to call back" is chosen, the picker offers the callee's times
    _outcome(driver, "callback").click()
    _visible(driver, "callback")
    option = Select(_by_id(driver, "callback-time")).options[0]
    picked = dt.datetime.fromisoformat(option.get_attribute("value") or "")
    zone = ZoneInfo(page_gateway.zone)
    assert option.text == picked.astimezone(zone).strftime("%H:%M")
    assert picked > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=29)
    assert _fits_the_width(driver)
    driver.save_screenshot(str(screenshots / "7-callback.png"))
    # And once recorded, the number is due at exactly that instant
    _by_id(driver, "callback-send").click()
    _text_in(driver, "status", "Записано")
    due = KeyScheme(page_gateway.settings.key_prefix, page_gateway.settings.campaign)
    scores = cast(
        list[tuple[bytes, float]],
        page_gateway.client.zrange(due.region("RU-MOW").due, 0, -1, withscores=True),
    )
    assert [score for _, score in scores] == [picked.timestamp() * 1000]
    # When the language is switched, the page speaks English
    _by_id(driver, "lang").click()
    assert _by_id(driver, "get").text in {"Get a number", "Try again"}
    assert driver.execute_script("return document.documentElement.lang") == "en"
    _by_id(driver, "lang").click()


def test_the_messenger_could_not_call_is_its_own_outcome(
    browser: WebDriver, page_gateway: PageGateway
) -> None:
    """Given a volunteer on a call, When they tap "the messenger could not call",
    Then the gateway records unreachable_channel and the number waits to be called again."""
    driver = browser
    _fresh(driver, page_gateway.url)
    driver.execute_script(
        "localStorage.setItem(arguments[0], arguments[1])",
        "phonebank.acknowledged",
        '["calm-conversation@1"]',
    )
    driver.get(f"{page_gateway.url}/#token={page_gateway.token('vol-channel')}")
    _take_number(driver)
    _outcome(driver, "channel").click()
    _text_in(driver, "status", "Записано")
    keys = KeyScheme(page_gateway.settings.key_prefix, page_gateway.settings.campaign)
    region = keys.region("RU-MOW")
    # Then the number is due again later, and the outcome event names the channel
    assert page_gateway.client.zcard(region.due) == 1
    events = cast(
        list[tuple[bytes, dict[bytes, bytes]]], page_gateway.client.xrange(region.outcomes)
    )
    assert [fields[b"outcome"] for _, fields in events][-1:] == [b"unreachable_channel"]


def test_a_number_listed_while_held_is_taken_away_with_do_not_call(
    browser: WebDriver, page_gateway: PageGateway
) -> None:
    """Given a volunteer holding a number, When it is put on the do-not-call list (by an
    operator, or another volunteer's late answer) and the volunteer renews, Then the page
    says "do not call this number" and shows the number no more."""
    driver = browser
    _fresh(driver, page_gateway.url)
    driver.execute_script(
        "localStorage.setItem(arguments[0], arguments[1])",
        "phonebank.acknowledged",
        '["calm-conversation@1"]',
    )
    driver.get(f"{page_gateway.url}/#token={page_gateway.token('vol-listed')}")
    _visible(driver, "get")
    shown = _take_number(driver)
    national = int(re.sub(r"\D", "", shown)[-10:])
    dnc.add_numbers(
        page_gateway.client, page_gateway.settings.key_prefix, [national], lambda _: None
    )
    _by_id(driver, "renew").click()
    _text_in(driver, "status", "Не звоните на этот номер")
    assert not _by_id(driver, "call").is_displayed()
