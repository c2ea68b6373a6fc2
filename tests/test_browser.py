"""The real page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_click_an_example_and_read_the_label(browser, app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    assert "not a medical device" in page.content()
    page.get_by_text("PNEUMONIA-bacterial 1", exact=True).click()
    label = page.locator("#label")
    label.get_by_text("PNEUMONIA").first.wait_for(timeout=30_000)
    page.locator("#decision").get_by_text("Decision: PNEUMONIA").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    page.close()


def test_app_renders_inside_an_iframe(browser, app_url, tmp_path):
    html = tmp_path / "embed.html"
    html.write_text(f'<!doctype html><html><body><h1>Host page</h1>'
                    f'<iframe src="{app_url}" width="1100" height="900"></iframe></body></html>')
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(html.as_uri())
    frame = page.frame_locator("iframe")
    frame.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "embedded.png"))
    page.close()
