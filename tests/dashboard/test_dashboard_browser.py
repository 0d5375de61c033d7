"""Acceptance 5: headless Debian chromium loads ``/dashboard`` from a gateway that has served two
tenants, signs in, and the page's totals equal ``/admin/usage``; a tenant key sees only its own
tenant; every request the page makes goes to this machine. Screenshots: tests/artifacts/."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.dashboard.conftest import ADMIN, ARTIFACTS, Served, gateway
from tests.gateway.harness import TEST_KEY

pytestmark = pytest.mark.timeout(600)


def _no_selenium_manager(self: object, args: list[str]) -> dict[str, str]:
    raise AssertionError(f"selenium-manager must not run (it downloads): {args}")


@pytest.fixture
def browser(chromium: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    binary, driver_path = chromium
    # Both paths are given, so selenium never asks selenium-manager (which would download a
    # browser and driver); the tripwire fails the test if it ever does, SE_OFFLINE as well.
    monkeypatch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_loaded(driver: WebDriver, after: int = 0) -> None:
    """Until the page has rendered fresh data more than ``after`` times."""
    WebDriverWait(driver, 30).until(
        lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or 0) > after
    )


def loads(driver: WebDriver) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or 0)


def sign_in(driver: WebDriver, url: str, key: str) -> None:
    driver.get(f"{url}/dashboard")
    field = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "key"))
    WebDriverWait(driver, 10).until(lambda d: field.is_displayed())
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "signin-button").click()
    wait_loaded(driver)


# Each read is one script, so a re-render (auto-refresh) cannot swap nodes out halfway.
def kpi(driver: WebDriver, name: str) -> str:
    return str(
        driver.execute_script(
            "return document.querySelector(arguments[0]).dataset.value",
            f'[data-testid="kpi-{name}"] .kpi-value',
        )
    )


_TABLE = """
const rows = {};
for (const tr of document.querySelectorAll(arguments[0])) {
  const cells = {};
  for (const td of tr.querySelectorAll("td[data-field]")) {
    cells[td.dataset.field] = td.dataset.value;
  }
  rows[tr.dataset.group] = cells;
}
return rows;
"""


def table(driver: WebDriver, group: str) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = driver.execute_script(
        _TABLE, f'[data-testid="by-{group}"] tbody tr'
    )
    return rows


def chart_total(driver: WebDriver, chart: str, series: str) -> float:
    value = driver.execute_script(
        "return document.querySelector(arguments[0]).getAttribute(arguments[1])",
        f'[data-testid="chart-{chart}"]',
        f"data-total-{series}",
    )
    return float(value or "nan")


def auto_refresh(driver: WebDriver, on: bool) -> None:
    box = driver.find_element(By.ID, "auto")
    if box.is_selected() != on:
        box.click()


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, through DevTools (a window screenshot stops at the viewport)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_matches_usage(driver: WebDriver, served: Served, tenant: str | None) -> None:
    scope = {"tenant": tenant} if tenant else {}
    usage = served.usage("tenant", **scope)
    requests = sum(r["requests"] for r in usage)
    errors = sum(r["errors"] for r in usage)
    inputs = sum(r["input_tokens"] for r in usage)
    outputs = sum(r["output_tokens"] for r in usage)
    cost = sum(Decimal(r["cost_usd"]) for r in usage)
    assert (
        int(kpi(driver, "requests"))
        == requests
        == sum(served.calls[t] for t in ([tenant] if tenant else served.calls))
    )
    assert int(kpi(driver, "errors")) == errors
    assert int(kpi(driver, "input-tokens")) == inputs
    assert int(kpi(driver, "output-tokens")) == outputs
    assert Decimal(kpi(driver, "cost")) == cost > 0
    assert Decimal(kpi(driver, "saved")) == sum(Decimal(r["cache_savings_usd"]) for r in usage)
    # The charts are drawn from the time series; their totals are the same numbers.
    assert chart_total(driver, "requests", "ok") + chart_total(driver, "requests", "errors") == (
        requests
    )
    assert chart_total(driver, "requests", "errors") == errors
    assert chart_total(driver, "tokens", "input") == inputs
    assert chart_total(driver, "tokens", "output") == outputs
    assert chart_total(driver, "cost", "cost") == pytest.approx(float(cost), rel=1e-9)
    for group in ("tenant", "model", "alias", "variant"):
        expected = {
            (r["group"] or ""): {
                "requests": str(r["requests"]),
                "errors": str(r["errors"]),
                "input_tokens": str(r["input_tokens"]),
                "output_tokens": str(r["output_tokens"]),
                "cost_usd": r["cost_usd"],
            }
            for r in served.usage(group, **scope)
        }
        assert table(driver, group) == expected, group


def test_dashboard_in_headless_chromium(browser: WebDriver, served: Served) -> None:
    url = served.url
    # A wrong key is refused with a message, and the page stays on the sign-in form.
    browser.get(f"{url}/dashboard")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "key").is_displayed())
    browser.find_element(By.ID, "key").send_keys("sk-strata-wrong")
    browser.find_element(By.ID, "signin-button").click()
    error = WebDriverWait(browser, 10).until(
        lambda d: (
            d.find_element(By.ID, "signin-error")
            if d.find_element(By.ID, "signin-error").is_displayed()
            else None
        )
    )
    assert "not accepted" in error.text
    screenshot(browser, "dashboard-signin.png")

    # Admin: every tenant, experiments and breakers.
    sign_in(browser, url, TEST_KEY)
    auto_refresh(browser, False)  # reads below hold elements; the refresh is checked later
    assert browser.find_element(By.CSS_SELECTOR, '[data-testid="scope"]').text == (
        "admin · all tenants"
    )
    assert_matches_usage(browser, served, None)
    assert set(table(browser, "tenant")) == {"acme", "globex"}
    arms = {
        a.get_attribute("data-variant"): (
            a.get_attribute("data-share"),
            a.get_attribute("data-served"),
        )
        for a in browser.find_elements(By.CSS_SELECTOR, '[data-alias="exp"] .arm')
    }
    variants = {r["group"]: r["requests"] for r in served.usage("variant")}
    assert arms == {
        "a": ("0.6", str(variants.get("a", 0))),
        "b": ("0.4", str(variants.get("b", 0))),
    }
    stats = httpx.get(f"{url}/admin/experiments/exp/stats", headers=ADMIN).json()
    verdict = WebDriverWait(browser, 15).until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, '[data-alias="exp"] [data-testid="verdict"]')
            if d.find_element(By.CSS_SELECTOR, '[data-alias="exp"] [data-testid="verdict"]').text
            else None
        )
    )
    assert verdict.text == "Verdict: " + stats["verdict"]["text"]
    pills = browser.find_elements(By.CSS_SELECTOR, '[data-testid="breakers"] .pill')
    assert len(pills) == 2 and {p.get_attribute("data-state") for p in pills} == {"closed"}
    latency = browser.find_elements(By.CSS_SELECTOR, '[data-testid="latency"] .hbar')
    assert len(latency) == 2
    hit_rate = float(kpi(browser, "cache-hit-rate"))
    assert hit_rate == pytest.approx(2 / 22, abs=1e-6)
    budget = browser.find_element(By.CSS_SELECTOR, f'.budget[data-id="{served.key_ids["acme"]}"]')
    assert "of $1.00" in budget.text
    shot = screenshot(browser, "dashboard-admin-light.png")
    assert shot.stat().st_size > 20_000

    # An admin may narrow to one tenant; a wider range buckets by hour, with the same totals.
    Select(browser.find_element(By.ID, "tenant-filter")).select_by_value("globex")
    WebDriverWait(browser, 30).until(lambda d: kpi(d, "requests") == str(served.calls["globex"]))
    assert set(table(browser, "tenant")) == {"globex"}
    Select(browser.find_element(By.ID, "tenant-filter")).select_by_value("")
    before = loads(browser)
    browser.find_element(By.CSS_SELECTOR, '#ranges button[data-range="86400"]').click()
    wait_loaded(browser, before)
    assert "per hour" in browser.find_element(By.ID, "legend-requests").text
    assert_matches_usage(browser, served, None)

    # Auto-refresh: the page renders new data without a reload (the interval is 10 s).
    auto_refresh(browser, True)
    before = loads(browser)
    browser.execute_script("window.__marker = 1")
    WebDriverWait(browser, 30).until(lambda d: loads(d) > before)
    assert browser.execute_script("return window.__marker") == 1  # same document

    browser.find_element(By.ID, "theme").click()
    dark = browser.execute_script("return document.documentElement.dataset.theme")
    assert dark in ("dark", "light")
    if dark != "dark":
        browser.find_element(By.ID, "theme").click()
    screenshot(browser, "dashboard-admin-dark.png")

    # A tenant key: its own tenant only, no gateway-wide panels.
    browser.find_element(By.ID, "signout").click()
    sign_in(browser, url, served.keys["acme"])
    auto_refresh(browser, False)
    assert browser.find_element(By.CSS_SELECTOR, '[data-testid="scope"]').text == "tenant acme"
    assert_matches_usage(browser, served, "acme")
    assert set(table(browser, "tenant")) == {"acme"}
    assert not browser.find_element(By.CSS_SELECTOR, '[data-testid="experiments"]').is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, '[data-testid="breakers"]').is_displayed()
    budgets = browser.find_elements(By.CSS_SELECTOR, '[data-testid="budgets"] .budget')
    assert [b.get_attribute("data-id") for b in budgets] == [served.key_ids["acme"]]
    assert "globex" not in browser.find_element(By.TAG_NAME, "main").text
    screenshot(browser, "dashboard-tenant.png")

    # Every request the page made went to this gateway, on 127.0.0.1.
    urls = requested_urls(browser)
    assert any("/admin/dashboard/summary" in u for u in urls)
    assert any(u.endswith("/dashboard/app.js") for u in urls)
    off_machine = [u for u in urls if not (u.startswith(f"{url}/") or u.startswith("data:"))]
    assert off_machine == []
    assert url.startswith("http://127.0.0.1:")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [e for e in errors if "401" not in e["message"]] == []  # only the wrong key's 401


def test_an_empty_gateway_shows_empty_states(browser: WebDriver, tmp_path: Path) -> None:
    with gateway(tmp_path) as url:
        sign_in(browser, url, TEST_KEY)
        assert kpi(browser, "requests") == "0" and kpi(browser, "cost") == "0"
        for panel in ("chart-requests", "latency", "cache", "by-tenant", "budgets", "breakers"):
            found = browser.find_elements(By.CSS_SELECTOR, f'[data-testid="{panel}"] .empty')
            assert len(found) == 1 and found[0].text, panel
        screenshot(browser, "dashboard-empty.png")
