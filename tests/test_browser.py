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


def fully_in_view(page, selector: str) -> bool:
    """The whole element lies inside the visible part of the page."""
    return page.locator(selector).evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }")


def headline(page) -> str:
    """The big class name the label component shows."""
    return page.locator("#label h2").inner_text().strip()


CAPTIONS = ["Child, NORMAL", "Child, NORMAL", "Child, bacterial pneumonia", "Child, bacterial pneumonia",
            "Child, viral pneumonia", "Child, viral pneumonia", "Adult, no finding", "Adult, pneumonia"]


@pytest.mark.parametrize("width, height, name", [(1280, 900, "laptop"), (390, 844, "phone")])
def test_click_an_example_thumbnail_and_read_the_answer(browser, app_url, width, height, name):
    """A laptop and a phone: the page opens ready for an upload, the examples
    are captioned thumbnails, and after each click the answer is on screen,
    its label and decision line naming the same class."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    assert "not a medical device" in page.content()
    thumbs = page.locator("#examples img")
    thumbs.first.wait_for(timeout=30_000)
    assert thumbs.count() == 8
    # Every thumbnail loads (waited for: on a busy machine the last ones arrive after the first).
    page.wait_for_function("() => [...document.querySelectorAll('#examples img')]"
                           ".every(e => e.complete && e.naturalWidth > 0)", timeout=30_000)
    assert [thumbs.nth(i).get_attribute("alt") for i in range(8)] == CAPTIONS
    assert "Child, bacterial pneumonia" in page.locator("#examples").inner_text()
    page.wait_for_timeout(800)
    # Nothing answered before the user asks, and the page stays at the top.
    assert page.locator("#label h2").count() == 0 and page.locator("#decision").inner_text().strip() == ""
    assert page.evaluate("window.scrollY") == 0
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_start.png"))
    thumbs.nth(2).click()
    page.locator("#decision").get_by_text("Decision: PNEUMONIA").wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # the phone layout scrolls the answer into view
    assert in_view(page, "#label")
    assert headline(page) == "PNEUMONIA"
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_answer.png"))
    # An adult X-ray (its head's threshold is 0.31): the notice stands above the
    # answer, and the label names the class the decision line names.
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#examples img").nth(6).click()
    notice = page.locator("#notice")
    notice.get_by_text("This looks like an adult's X-ray").wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    assert in_view(page, "#notice") and in_view(page, "#label")
    box, label = notice.bounding_box(), page.locator("#label").bounding_box()
    assert box["y"] + box["height"] <= label["y"] + 1
    decided = page.locator("#decision").inner_text().split("Decision: ")[1].split(":")[0].strip()
    assert headline(page) == decided
    if name == "laptop":  # the whole overlay in view, notice and all
        assert fully_in_view(page, "#overlay img")
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_adult.png"))
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
