"""The review page end to end: headless Chromium (Debian's, driven by Playwright) approves a payout."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.kafka import produce, read_until
from tests.reviews import TOKENS, big_order, hold, tokens_file, web_port

CHROMIUM = Path("/usr/bin/chromium")
#: An SVG polyline with a line to draw: two points at least.
TWO_POINTS = re.compile(r"[\d.]+,[\d.]+ [\d.]+,[\d.]+")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (`make install` as root)")
async def test_a_reviewer_approves_a_payout_on_the_page(bootstrap, start_pipeline, tmp_path: Path):
    reviewers = tokens_file(tmp_path)
    pipeline = await start_pipeline(review_tokens_file=reviewers, review_threshold=Decimal("500.00"))
    port, token = web_port(pipeline), TOKENS["carol"]
    chosen, other = await hold(bootstrap, pipeline, ["o-page-1", "o-page-2"], token=token)
    origin = f"http://127.0.0.1:{port}"
    requested: list[str] = []

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"{origin}/")
            assert await page.locator("input:visible:not([type=checkbox])").count() == 1  # the token only
            await page.fill("#token", token)
            await page.click("#login button")
            await expect(page.locator("#who")).to_have_text("carol", timeout=20_000)
            row = page.locator(f'tr[data-payout-id="{chosen}"]')
            await expect(row).to_contain_text("1941.70 EUR", timeout=20_000)
            await expect(page.locator(f'tr[data-payout-id="{other}"]')).to_be_visible()
            await expect(page.locator("#s-pending")).to_have_text("2", timeout=20_000)
            await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            await row.locator("input").fill("verified with the seller by phone")
            await row.locator("button.approve").click()

            await expect(page.locator("#message")).to_have_text(
                f"{chosen}: approved by carol.", timeout=20_000
            )
            await expect(row).to_have_count(0)
            stored = await page.evaluate("[sessionStorage.getItem('token'), localStorage.length]")
        finally:
            await browser.close()

    [approved] = await read_until(bootstrap, pipeline.topics.payouts_approved.get_topic_name(), bool)
    assert approved["payout_id"] == chosen
    assert (approved["review"]["reviewer"], approved["review"]["reason"]) == (
        "carol",
        "verified with the seller by phone",
    )
    assert stored == [token, 0]  # kept for this tab only
    assert requested and all(url.startswith(origin) for url in requested), requested  # works offline


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (`make install` as root)")
async def test_at_800_px_a_reviewer_searches_decides_and_sees_the_decided_tab_and_the_chart(
    bootstrap, start_pipeline, tmp_path: Path
):
    pipeline = await start_pipeline(
        review_tokens_file=tokens_file(tmp_path), review_threshold=Decimal("500.00")
    )
    port, token = web_port(pipeline), TOKENS["bob"]
    # One seller, two currencies: the GBP payout is compared with GBP history only (none here).
    orders = pipeline.topics.orders.get_topic_name()
    await produce(bootstrap, orders, [(b"s-0", big_order("o-eur", seller="s-0", amount="300.00"))])
    await read_until(bootstrap, pipeline.topics.payouts_approved.get_topic_name(), bool)
    chosen, _ = await hold(bootstrap, pipeline, ["o-w-1", "o-w-2"], token=token)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 900})
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.fill("#token", token)
            await page.click("#login button")
            row = page.locator(f'tr[data-payout-id="{chosen}"]')
            for text in ("2000.00 gross", "58.30 fee", "1941.70 EUR", "order o-w-1", "customer c-1"):
                await expect(row).to_contain_text(text, timeout=20_000)
            await expect(row.locator("td").nth(2)).not_to_have_text("\u2013")  # the order's time
            await expect(page.locator("#s-pending")).to_have_text("2", timeout=20_000)
            await expect(page.locator("#s-overdue")).to_have_text("0")
            await row.scroll_into_view_if_needed()  # (below the chart, the row may start off screen)
            await expect(row.locator("button.reject")).to_be_in_viewport()  # not cut off at the right
            box = await row.locator("button.reject").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800
            assert await page.evaluate("document.documentElement.scrollWidth") <= 800

            await page.fill("#query", "o-w-1")
            await page.click("#search button")
            card = page.locator(f'#journeys article[data-payout-id="{chosen}"]')
            await expect(card).to_contain_text("waiting for review", timeout=20_000)
            await expect(card).to_contain_text("threshold 500.00")

            await row.locator("input").fill("known seller")
            await row.locator("button.reject").click()
            await expect(row).to_have_count(0, timeout=20_000)
            await page.click("#tab-decided")
            decided = page.locator(f'#decided tr[data-payout-id="{chosen}"]')
            await expect(decided).to_contain_text("rejected", timeout=20_000)
            await expect(decided).to_contain_text("bob")
            await expect(decided).to_contain_text("known seller")

            await expect(page.locator("#line-orders")).to_have_attribute("points", TWO_POINTS, timeout=30_000)
            await expect(page.locator("#line-queue")).to_have_attribute("points", TWO_POINTS)
            assert await page.evaluate("document.documentElement.scrollWidth") <= 800
            await page.screenshot(path=str(tmp_path / "dashboard-800.png"), full_page=True)
        finally:
            await browser.close()
