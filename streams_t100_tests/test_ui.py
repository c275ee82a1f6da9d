"""The asset UI in a real browser: Debian's Chromium, driven by Playwright, against the
deployment's webserver and daemon."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster._core.execution.backfill import BulkActionStatus
from playwright.sync_api import Page, expect, sync_playwright

from streams_t100.partitions import last_complete_week
from streams_t100_tests.deployment import REPOSITORY_ROOT, wait_for_backfill, wait_until
from streams_t100_tests.helpers import client_for, materialize_weeks

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("STREAMS_T100_TEST_ARTIFACTS", REPOSITORY_ROOT / "test-artifacts"))
ASSETS = [
    "raw_channel_pages",
    "weekly_top_channels",
    "weekly_channel_movers",
    "weekly_category_summary",
    "channel_profiles",
]
WEEKLY_ASSETS = ASSETS[:4]
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser, deployment) -> Page:
    # On a local address the UI opens a newsletter dialog over the page a second after it
    # loads, unless the instance records the dialog as seen. Record that first, through the
    # same GraphQL mutation that the dialog's Skip button sends.
    response = requests.post(
        f"{deployment.webserver_url}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30
    )
    response.raise_for_status()
    assert response.json()["data"]["setNuxSeen"] is True

    opened = browser.new_page(viewport={"width": 1400, "height": 900})
    opened.set_default_timeout(UI_TIMEOUT_MS)
    yield opened
    opened.close()


def test_asset_graph_shows_every_asset(page, deployment):
    page.goto(f"{deployment.webserver_url}/asset-groups")

    for asset in ASSETS:
        expect(page.get_by_text(asset, exact=True).last).to_be_visible()
    # Each node loads its status after the graph is drawn; the screenshot waits for all.
    expect(page.get_by_text("Loading...")).to_have_count(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "asset_graph.png")


def test_partitions_view_shows_week_status(page, deployment):
    client = client_for(
        deployment.simulator.base_url,
        deployment.simulator.client_id,
        deployment.simulator.token,
        allow_paid_requests=True,
    )
    instance = deployment.instance()
    # In a thread of its own: Dagster runs an event loop, which cannot run in the thread where
    # Playwright's is running.
    with ThreadPoolExecutor(max_workers=1) as runner:
        runner.submit(
            materialize_weeks, client, deployment.duckdb_path, "2025-04-07", instance=instance
        ).result()
    materialized = instance.get_materialized_partitions(dg.AssetKey("weekly_top_channels"))
    instance.dispose()

    page.goto(f"{deployment.webserver_url}/assets/weekly_top_channels?view=partitions")

    expect(page.get_by_text(f"Materialized ({len(materialized)})")).to_be_visible()
    # Every Monday from the default first week, 2020-01-06, to the last week that has ended.
    last_monday = last_complete_week(datetime.now(UTC)).start
    total = (last_monday - date(2020, 1, 6)).days // 7 + 1
    expect(page.get_by_text(f"Missing ({total - len(materialized)})")).to_be_visible()
    expect(page.get_by_text(f"{total} Partitions Selected")).to_be_visible()


def test_backfill_launched_from_ui(page, deployment):
    latest = last_complete_week(datetime.now(UTC))
    weeks = [latest.previous().key, latest.key]
    instance = deployment.instance()
    backfills_before = {backfill.backfill_id for backfill in instance.get_backfills()}

    page.goto(f"{deployment.webserver_url}/asset-groups")
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    selection = dialog.get_by_role("textbox").first
    selection.fill(f"[{weeks[0]}...{weeks[1]}]")
    selection.press("Enter")
    expect(dialog.get_by_text("2 partitions", exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Launch backfill").click()

    def new_backfill():
        created = [b for b in instance.get_backfills() if b.backfill_id not in backfills_before]
        return created[0] if created else None

    backfill = wait_until(new_backfill, 60, "the backfill launched from the UI")
    finished = wait_for_backfill(deployment, instance, backfill.backfill_id)
    assert finished.status == BulkActionStatus.COMPLETED_SUCCESS, deployment.logs()
    for asset in WEEKLY_ASSETS:
        assert set(weeks) <= instance.get_materialized_partitions(dg.AssetKey(asset)), asset
    instance.dispose()

    page.goto(f"{deployment.webserver_url}/assets/weekly_top_channels?view=partitions")
    expect(page.get_by_text(re.compile(r"Materialized \(\d+\)"))).to_be_visible()
