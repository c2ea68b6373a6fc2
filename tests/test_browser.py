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


def in_view(page, selector: str) -> bool:
    """Some of the element lies inside the visible part of the page."""
    return page.locator(selector).evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < window.innerHeight; }")


@pytest.mark.parametrize("width, height, name", [(1280, 800, "laptop"), (390, 844, "phone")])
def test_click_an_example_thumbnail_and_read_the_answer(browser, app_url, width, height, name):
    """A laptop and a phone: the examples are thumbnails of the X-rays, and
    after a click the answer is on screen without scrolling for it."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    assert "not a medical device" in page.content()
    thumbs = page.locator(".gallery img")
    assert thumbs.count() == 8
    assert all(thumbs.nth(i).evaluate("e => e.complete && e.naturalWidth > 0") for i in range(8))
    assert "PNEUMONIA-bacterial" in thumbs.nth(2).get_attribute("src")
    page.wait_for_timeout(800)  # the preloaded example's answer must not pull the page down
    assert page.evaluate("window.scrollY") == 0
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_start.png"))
    thumbs.nth(2).click()
    page.locator("#decision").get_by_text("Decision: PNEUMONIA").wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # the phone layout scrolls the answer into view
    assert in_view(page, "#label")
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_answer.png"))
    # An adult X-ray: the notice stands above the answer.
    page.evaluate("window.scrollTo(0, 0)")
    page.locator(".gallery img").nth(6).click()
    notice = page.locator("#notice")
    notice.get_by_text("Outside the training population").wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    assert in_view(page, "#notice")
    box, label = notice.bounding_box(), page.locator("#label").bounding_box()
    assert box["y"] + box["height"] <= label["y"] + 1
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_adult.png"), full_page=name == "laptop")
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
