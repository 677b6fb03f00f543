"""The operator console in a real browser (Debian chromium driven by Playwright, headless): the
dashboard shows a live VoLTE call (Gx attach, Rx AAR, Ro CCR-I over real sockets) with its QCI,
GBR and charge, the chart draws the Diameter traffic, and a top-up through the form changes the
balance. Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from schemas.api import Role
from tests.fixtures.api import Stack
from tests.fixtures.ocs import E164, INITIAL, TERMINATION, ccr, ims, mscc, units

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian chromium")


async def _traffic(stack: Stack, stop: asyncio.Event) -> None:
    """Background Ro requests (an unknown subscriber: 5030) so the chart has a request rate."""
    n = 0
    while not stop.is_set():
        n += 1
        request = ccr(f"cscf.test;load;{n}", INITIAL, 0, subscription=(E164, "4900000000"))
        await stack.cscf.send(request)
        await asyncio.sleep(0.05)


def _live_call(stack: Stack) -> None:
    msisdn, imsi = "491706666666", "001010000000066"
    stack.subscriber("hanna", msisdn, imsi, 500, policy_profile="prepaid-data")
    assert (
        stack.run(stack.pgw.attach("pgw.openpcc.test;gx;hanna", msisdn, imsi)).get("Result-Code")
        == 2001
    )
    assert stack.run(stack.pcscf.aar("pcscf.openpcc.test;rx;hanna")).get("Result-Code") == 2001
    call = ccr(
        "cscf.test;call;hanna",
        INITIAL,
        0,
        mscc(rg=100, sid=1000, rsu=units(time=60)),
        ims("tel:+4915112345678", f"sip:+{msisdn}@ims.test", icid="icid-hanna"),
        subscription=(E164, msisdn),
    )
    assert stack.run(stack.cscf.send(call)).get("Result-Code") == 2001


def test_dashboard_shows_live_call_and_chart_and_top_up_changes_balance(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    _live_call(stack)
    stop = asyncio.Event()
    load = asyncio.run_coroutine_threadsafe(_traffic(stack, stop), stack.loop.loop)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{stack.base_url}/")
            page.fill("#api-key", "opcc_wrong")
            page.click("#login-form button")
            expect(page.locator("#login-error")).to_have_text("That key is not valid.")
            page.fill("#api-key", stack.keys[Role.OPERATOR])
            page.click("#login-form button")

            call = page.locator("#calls tbody tr", has_text="hanna")
            expect(call).to_be_visible()
            expect(call).to_contain_text("tel:+4915112345678")
            expect(call.locator("td").nth(3)).to_have_text("1")  # QCI 1: conversational voice
            expect(call.locator("td").nth(4)).to_have_text("64 kbit/s / 64 kbit/s")
            expect(call.locator("td.charged")).to_have_text("0.00 EUR")
            expect(page.locator("#kpi-rx")).to_have_text("1")
            expect(page.locator("#peers tbody tr", has_text="pgw.openpcc.test")).to_contain_text(
                "open"
            )
            # The chart: after a few polls the rate series is drawn (blue pixels on the canvas).
            expect(page.locator("#kpi-rate")).not_to_have_text("–", timeout=10_000)
            page.wait_for_function(
                "Number(document.getElementById('kpi-rate').textContent) > 1", timeout=15_000
            )
            page.wait_for_timeout(6000)
            blue = page.evaluate(
                """() => { const c = document.getElementById('chart');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 0; i < d.length; i += 4)
                  if (d[i] < 80 && d[i + 1] < 130 && d[i + 2] > 200) n++; return n; }"""
            )
            page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)
            assert blue > 30, "the request-rate line is drawn"

            page.goto(f"{stack.base_url}/console/#/subscribers")
            page.select_option("#find-kind", "msisdn")
            page.fill("#find-value", "+49 170 6666666")
            page.click("#find-form button")
            expect(page.locator("#sub-title")).to_have_text("hanna")
            main = page.locator("#balances tbody tr", has_text="main")
            expect(main.locator("td.amount")).to_have_text("5.00 EUR")
            expect(main.locator("td.available")).to_have_text("4.83 EUR")  # 0.17 held by the call
            page.fill("#topup-amount", "12.50")
            page.fill("#topup-reason", "shop voucher 77")
            with page.expect_request(lambda r: r.url.endswith("/topups")) as sent:
                page.click("#topup-form button")
            expect(page.locator("#topup-result")).to_contain_text("now 17.50")
            # The form makes its money write retry-safe (docs/operations.md: Idempotency-Key).
            assert len(sent.value.headers.get("idempotency-key", "")) == 32
            expect(main.locator("td.amount")).to_have_text("17.50 EUR")
            expect(page.locator("#history tbody tr").first).to_contain_text("shop voucher 77")
            page.screenshot(path=str(ARTIFACTS / "console-subscriber.png"), full_page=True)

            hang_up = ccr(
                "cscf.test;call;hanna",
                TERMINATION,
                1,
                mscc(rg=100, sid=1000, usu=units(time=30)),
                ims("tel:+4915112345678", "sip:+491706666666@ims.test"),
                subscription=(E164, "491706666666"),
            )
            assert stack.run(stack.cscf.send(hang_up)).get("Result-Code") == 2001
            page.goto(f"{stack.base_url}/console/#/cdrs")
            row = page.locator("#cdrs tbody tr", has_text="tel:+4915112345678")
            expect(row).to_contain_text("0.17 EUR")  # 0.05 connect + 1 min at 0.12 (60/1)
            expect(row).to_contain_text("waiting")  # no exporter in this process: still unsent
            expect(page.locator("#ob-unsent")).to_have_text("1")
            page.screenshot(path=str(ARTIFACTS / "console-cdrs.png"), full_page=True)
            browser.close()
    finally:
        stack.loop.loop.call_soon_threadsafe(stop.set)
        load.result(10)
    api = stack.http(Role.READ_ONLY)
    assert api.get("/api/v1/accounts/hanna").json()["balances"][0]["amount"] == 1750 - 17
    audit = api.get("/api/v1/audit", params={"resource": "account:hanna"})
    assert audit.status_code == 403  # read-only keys do not read the audit log
    entries = (
        stack.http(Role.OPERATOR)
        .get("/api/v1/audit", params={"resource": "account:hanna"})
        .json()["items"]
    )
    assert entries[0]["action"] == "balance.topup" and entries[0]["reason"] == "shop voucher 77"


def test_console_is_served_without_a_key(stack: Any) -> None:
    import httpx

    page = httpx.get(f"{stack.base_url}/console/")
    assert page.status_code == 200 and "<title>OpenPCC console</title>" in page.text
    assert httpx.get(f"{stack.base_url}/console/console.js").status_code == 200
    root = httpx.get(f"{stack.base_url}/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
