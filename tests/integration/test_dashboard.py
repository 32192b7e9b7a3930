"""The review page end to end: headless Chromium (Debian's, driven by Playwright) approves a payout."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.kafka import read_until
from tests.reviews import TOKENS, hold, tokens_file, web_port

CHROMIUM = Path("/usr/bin/chromium")
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
            assert await page.locator("input").count() == 1  # the token: nobody types a name
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
