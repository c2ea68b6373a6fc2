"""The real page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""
import ast
import json
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


def app_js(name: str) -> str:
    """A JavaScript function of app.py's, read from its source (no model loaded)."""
    tree = ast.parse((ROOT / "app.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise KeyError(name)


def verdict_text(page) -> str:
    return page.locator("#verdict").inner_text().strip()


def names_only(text: str, decided: str) -> None:
    """Nothing on screen names the class that was not decided."""
    other = {"NORMAL": "PNEUMONIA", "PNEUMONIA": "NORMAL"}[decided]
    assert decided in text
    assert other not in text.replace("P(PNEUMONIA)", ""), text


def no_horizontal_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def overlaps(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or
                a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


# Each caption gives the truth, and says so where the served model answers otherwise.
CAPTIONS = ["Child, NORMAL", "Child, NORMAL", "Child, bacterial pneumonia", "Child, bacterial pneumonia",
            "Child, viral pneumonia", "Child, viral pneumonia", "Adult, no finding", "Adult, pneumonia",
            "Adult, tuberculosis"]
N_EXAMPLES = len(CAPTIONS)


@pytest.mark.parametrize("width, height, name", [(1280, 900, "laptop"), (390, 844, "phone")])
def test_click_an_example_thumbnail_and_read_the_answer(browser, app_url, width, height, name):
    """A laptop and a phone: the page opens ready for an upload, every example
    thumbnail is visible without scrolling sideways, and after each click the
    answer is on screen, read one way: the decision, and P(PNEUMONIA) on one
    gauge against the threshold that decided it."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    assert "not a medical device" in page.content()
    thumbs = page.locator("#examples img")
    thumbs.first.wait_for(timeout=30_000)
    assert thumbs.count() == N_EXAMPLES
    # Every thumbnail loads (waited for: on a busy machine the last ones arrive after the first).
    page.wait_for_function("() => [...document.querySelectorAll('#examples img')]"
                           ".every(e => e.complete && e.naturalWidth > 0)", timeout=30_000)
    alts = [thumbs.nth(i).get_attribute("alt") for i in range(N_EXAMPLES)]
    assert [a.split(";")[0] for a in alts] == CAPTIONS
    assert "Adult, pneumonia; the model can't tell" in alts   # an example it can't answer stays, and says so
    page.wait_for_timeout(800)
    no_horizontal_scroll(page)
    gallery = page.locator("#examples").bounding_box()
    for i in range(N_EXAMPLES):   # each thumbnail wholly inside the page's width and inside the gallery
        b = thumbs.nth(i).bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= width + 1, (name, i)
        assert gallery["y"] <= b["y"] and b["y"] + b["height"] <= gallery["y"] + gallery["height"] + 1, (name, i)
    # Nothing answered before the user asks, and the page stays at the top.
    assert verdict_text(page) == "" and page.locator("#overlay img").count() == 0
    assert page.evaluate("window.scrollY") == 0
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_start.png"), full_page=True)
    thumbs.nth(2).click()
    page.locator("#decision-line").wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # the phone layout scrolls the answer into view
    assert in_view(page, "#verdict")
    names_only(verdict_text(page), "PNEUMONIA")
    assert not page.locator("#label").is_visible()     # the two-bar label is for programs only
    # The overlay: shown large, nothing of ours on top of it.
    img = page.locator("#overlay img").bounding_box()
    assert img["width"] >= min(300, width - 60)
    for other in page.locator("#answer button, #answer label, #answer .label-wrap").all():
        holds = other.evaluate("e => e.contains(document.querySelector('#overlay img'))")
        if other.is_visible() and not holds:
            assert not overlaps(other.bounding_box(), img), other.evaluate("e => e.outerHTML.slice(0, 200)")
    assert page.locator("#heat-scale").is_visible()
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_answer.png"), full_page=True)
    # An adult X-ray, read by the adult reader: the notice stands above the
    # answer, and only the decided class is named.
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#examples img").nth(6).click()
    notice = page.locator("#notice")
    notice.get_by_text("This looks like an adult's X-ray").wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    assert in_view(page, "#notice") and in_view(page, "#verdict")
    box, verdict = notice.bounding_box(), page.locator("#verdict").bounding_box()
    assert box["y"] + box["height"] <= verdict["y"] + 1
    text = verdict_text(page)
    decided = "PNEUMONIA" if "the answer is PNEUMONIA" in text else "NORMAL"
    names_only(text, decided)
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"app_{name}_adult.png"), full_page=True)
    # An upload's answer is not the example's: no thumbnail stays marked selected.
    assert page.locator("#examples .thumbnail-item.selected").count() == 1
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "NORMAL_IM-0001-0001.jpeg"))
    page.wait_for_function("() => !document.querySelector('#examples .thumbnail-item.selected')", timeout=30_000)
    page.close()


def heads(p: float, t: float, share: float) -> list[dict]:
    """details["heads"] for an answer P(PNEUMONIA) = p at threshold t, the adult head's share `share`."""
    child_t, adult_t = (0.712, 0.171) if 0 < share < 1 else ((t, 0.171) if share == 0 else (0.712, t))
    return [{"head": "children's head", "share": 1 - share, "probability": p, "threshold": child_t},
            {"head": "adult head", "share": share, "probability": p, "threshold": adult_t}]


@pytest.mark.parametrize("p, t, share", [
    (0.05, 0.712, 0.0), (0.60, 0.712, 0.0), (0.712, 0.712, 0.0), (0.95, 0.712, 0.0), (0.20, 0.312, 1.0),
    (0.35, 0.312, 1.0), (0.312, 0.312, 1.0), (0.80, 0.312, 1.0), (0.28, 0.197, 0.96), (0.30, 0.45, 0.4)])
def test_the_answer_reads_one_way_on_both_sides_of_both_thresholds(browser, app_url, p, t, share):
    """The page's own answer function, on answers below, at and above each head's
    threshold, between a threshold and 50%, and mixed: the decision heads it, the
    gauge's fill is P(PNEUMONIA) with the threshold marked, the other class is
    never named, and the sentence names the head that answered and its fixed
    threshold, or both heads with theirs and their shares where two are mixed."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    decided = "PNEUMONIA" if p >= t else "NORMAL"
    d = {"answered": True, "refusal": None, "decision": decided, "probability_pneumonia": p, "threshold": t,
         "heads": heads(p, t, share), "heatmap_class": decided}
    page.locator("#verdict").wait_for(state="attached", timeout=30_000)
    html = page.evaluate(f"({app_js('ANSWER_JS')})({json.dumps(d)})")
    page.evaluate("h => { document.querySelector('#verdict').innerHTML = h; }", html)
    text = verdict_text(page)
    assert text.startswith(decided)
    names_only(text, decided)
    fill = page.locator("#verdict .fill").evaluate("e => e.style.width")
    mark = page.locator("#verdict .mark").evaluate("e => e.style.left")
    assert float(fill.rstrip("%")) == pytest.approx(100 * p, abs=0.06)
    assert float(mark.rstrip("%")) == pytest.approx(100 * t, abs=0.06)
    line = page.locator("#decision-line").inner_text()
    if share in (0.0, 1.0):
        who = "the children's model" if share == 0 else "the adult head"
        assert f"{100 * t:.1f}%, the fixed threshold of {who}" in line, line
    else:   # both heads, each with its threshold, and the shares that mix them
        assert "threshold 71.2%" in line and "threshold 17.1%" in line and f"mixed threshold of {100 * t:.1f}%" in line
        assert f"{100 * (1 - share):.0f}% to {100 * share:.0f}%" in line, line
    page.close()


def test_an_opaque_lung_answer_says_the_density_rule_decided(browser, app_url):
    """An answer the lung-density rule raised (rules.WHITE_RULE 8): the sentence
    names the opaque side, its density and the rule's threshold, the rule's
    probability and the model's own, and the decision; the gauge shows the answer's P."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(app_url)
    page.locator("#verdict").wait_for(state="attached", timeout=60_000)
    d = {"answered": True, "refusal": None, "decision": "PNEUMONIA", "probability_pneumonia": 0.973,
         "threshold": 0.708, "heads": heads(0.12, 0.708, 0.0), "heatmap_class": "PNEUMONIA",
         "opacity": {"densities": [0.912, 0.331], "threshold": 0.75, "opaque": True, "side": "image left",
                     "probability": 0.973, "model_probability": 0.12}}
    html = page.evaluate(f"({app_js('ANSWER_JS')})({json.dumps(d)})")
    page.evaluate("h => { document.querySelector('#verdict').innerHTML = h; }", html)
    text = verdict_text(page)
    assert text.startswith("PNEUMONIA")
    names_only(text, "PNEUMONIA")
    line = page.locator("#decision-line").inner_text()
    for said in ("One lung (image left)", "density 0.91", "opaque from 0.75", "97.3% of the time",
                 "P(PNEUMONIA) = 97.3%", "the model alone: 12.0%", "at or above the threshold of 70.8%"):
        assert said in line, (said, line)
    assert float(page.locator("#verdict .fill").evaluate("e => e.style.width").rstrip("%")) == pytest.approx(97.3)
    no_horizontal_scroll(page)
    page.close()


@pytest.mark.parametrize("t", [0.02, 0.1, 0.177, 0.3, 0.5, 0.85, 0.98])
def test_no_two_pieces_of_the_answer_overlap_on_a_phone(browser, app_url, t):
    """At 390 px, whatever the threshold (the label once ran into "0%" under 20%):
    the headline, the threshold's label, the gauge, its ends and the sentences
    each keep a box of their own."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    page.locator("#verdict").wait_for(state="attached", timeout=30_000)
    for p in (0.01, t, 0.99):
        decided = "PNEUMONIA" if p >= t else "NORMAL"
        d = {"answered": True, "refusal": None, "decision": decided, "probability_pneumonia": p, "threshold": t,
             "heads": heads(p, t, 0.0), "heatmap_class": decided,
             "tuberculosis": {"probability": 0.4, "threshold": 0.27, "decision": "signs", "measured": "measured on x"}}
        html = page.evaluate(f"({app_js('ANSWER_JS')})({json.dumps(d)})")
        page.evaluate("h => { document.querySelector('#verdict').innerHTML = h; }", html)
        parts = ["#verdict .headline", "#verdict .tl span", "#verdict .gauge", "#verdict .ticks span >> nth=0",
                 "#verdict .ticks span >> nth=1", "#decision-line", "#verdict .more"]
        boxes = {sel: page.locator(sel).bounding_box() for sel in parts}
        verdict = page.locator("#verdict").bounding_box()
        for i, a in enumerate(parts):
            b = boxes[a]
            assert b["x"] >= verdict["x"] - 1 and b["x"] + b["width"] <= verdict["x"] + verdict["width"] + 1, (t, a)
            for other in parts[i + 1:]:
                assert not overlaps(b, boxes[other]), (t, p, a, other)
    no_horizontal_scroll(page)
    page.close()


def test_the_page_text_is_drawn_from_complete_font_faces(app_url):
    """Every font face the theme declares holds every printable ASCII glyph.
    Gradio's packaged SemiBold faces hold a few dozen, so bold text once took
    its A from one face and the other letters from another ("PNEUMONIᴀ")."""
    import io
    import re
    import urllib.request
    from fontTools.ttLib import TTFont
    css = urllib.request.urlopen(app_url + "theme.css", timeout=10).read().decode()
    faces = re.findall(r"@font-face\s*{[^}]*?url\('([^']+)'\)[^}]*?font-weight:\s*(\d+)", css)
    assert faces, "the theme declares no font face"
    for url, weight in faces:
        font = TTFont(io.BytesIO(urllib.request.urlopen(app_url + url, timeout=10).read()))
        missing = [chr(c) for c in range(32, 127) if c not in font.getBestCmap()]
        assert not missing, (url, weight, "".join(missing))
    assert any(w == "700" for _, w in faces) and not any(w == "600" for _, w in faces)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_lines_under_the_answer_appear_only_where_they_apply(browser, app_url, width):
    """A bacterial child and a viral child get the type line; a healthy child
    none; a TB adult and a normal adult none either (the served TB line does not
    hold on a hospital it was not fitted on, so it is not shown); each line with
    its probability, threshold and a 'measured on' caveat."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    page.locator("#examples img").first.wait_for(timeout=30_000)
    alts = [page.locator("#examples img").nth(i).get_attribute("alt") for i in range(N_EXAMPLES)]
    expect = {"Child, bacterial pneumonia": "Which pneumonia", "Child, viral pneumonia": "Which pneumonia",
              "Adult, tuberculosis": None, "Adult, no finding": None}
    shots = 0
    for caption, line in [*expect.items(), ("Child, NORMAL", None)]:
        i = next(k for k, a in enumerate(alts) if a.split(";")[0] == caption)
        page.evaluate("window.scrollTo(0, 0)")
        previous = verdict_text(page)
        page.locator("#examples img").nth(i).click()
        page.wait_for_function("p => document.querySelector('#verdict') && "
                               "document.querySelector('#verdict').innerText.trim() !== p && "
                               "document.querySelector('#decision-line')", arg=previous, timeout=30_000)
        page.wait_for_timeout(500)
        text = verdict_text(page)
        lines = [m.inner_text() for m in page.locator("#verdict .more").all()]
        if line is None:
            assert lines == [], (caption, lines)
            continue
        assert len(lines) == 1 and line.lower() in lines[0], (caption, lines)
        assert lines[0].startswith("A side reading (measured on"), lines   # secondary: the caveat first
        assert "threshold" in lines[0] and "%" in lines[0]
        weight = page.locator("#verdict .more").first.evaluate("e => getComputedStyle(e).fontWeight")
        assert int(weight) < 600 and not page.locator("#verdict .more b").count()   # quiet type, no bold
        if caption.startswith("Child"):
            assert "looks bacterial" in lines[0] or "looks viral" in lines[0]
        page.screenshot(path=str(ARTIFACTS / f"app_{width}_{caption.split(', ')[1].replace(' ', '_')}.png"),
                        full_page=True)
        shots += 1
        assert "PNEUMONIA" in text or "NORMAL" in text
    assert shots == 2
    page.close()


def test_nothing_of_an_answer_stays_after_a_refused_file(browser, app_url, tmp_path):
    """A good X-ray, then a file that is no image (text named .png, which the
    browser lets through): every output of the first answer (notice, decision,
    gauge, overlay, JSON) is gone, the refusal says why, and the upload box
    shows no broken picture."""
    junk = tmp_path / "scan.png"
    junk.write_text("not an x-ray")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").wait_for(timeout=60_000)
    page.locator("#examples img").nth(6).click()                # an adult: notice, decision, overlay
    page.locator("#notice").get_by_text("This looks like an adult's X-ray").wait_for(timeout=30_000)
    page.locator("#overlay img").wait_for(timeout=30_000)
    page.locator("#upload input[type=file]").set_input_files(str(junk))   # answered on upload
    page.locator("#verdict").get_by_text("Not answered").wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    text = verdict_text(page)
    assert "not an image" in text and "PNEUMONIA" not in text and "NORMAL" not in text
    assert page.locator("#notice").inner_text().strip() == ""
    assert not page.locator("#overlay img").is_visible()
    page.get_by_text("For programs (JSON)").click()
    # The panel's JSON is drawn after it opens: wait for it (a timeout fails the test as the assert would).
    page.locator("#answer").get_by_text("not_an_image").first.wait_for(timeout=10_000)
    shown = page.locator("#answer").inner_text()
    assert "not_an_image" in shown and "adult head" not in shown and "PNEUMONIA" not in shown
    assert page.locator("#upload img").count() == 0                 # no broken picture left
    page.screenshot(path=str(ARTIFACTS / "app_refused.png"), full_page=True)
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


def test_many_xrays_tab_answers_each_file_and_offers_the_csv(browser, app_url, tmp_path):
    """The second tab: X-rays, a file that is no image and a zip dropped at once; a
    row per X-ray (the zip's unpacked), the refused one with its reason, answers.csv to download."""
    import csv
    import zipfile
    junk = tmp_path / "scan.png"
    junk.write_text("not an x-ray")
    zipped = tmp_path / "two.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for name in ("NORMAL_IM-0001-0001.jpeg", "PNEUMONIA-viral_person10_virus_35.jpeg"):
            z.write(ROOT / "examples" / name, f"inside/{name}")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url)
    page.get_by_role("tab", name="Many X-rays").click()
    page.locator("#many-files input[type=file]").set_input_files(
        [str(ROOT / "examples" / "PNEUMONIA-bacterial_person100_bacteria_475.jpeg"), str(junk), str(zipped)])
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Analyze all").click()
    link = page.locator("#many-csv a").first
    link.wait_for(timeout=60_000)
    table = page.locator("#many-table").inner_text()
    for name in ("PNEUMONIA-bacterial_person100_bacteria_475.jpeg", "scan.png", "inside/NORMAL_IM-0001-0001.jpeg",
                 "inside/PNEUMONIA-viral_person10_virus_35.jpeg"):
        assert name in table, table
    assert "not_an_image" in table
    with page.expect_download() as download:
        link.click()
    rows = list(csv.DictReader(open(download.value.path(), newline="")))
    assert [r["decision"] for r in rows] == ["PNEUMONIA", "", "NORMAL", "PNEUMONIA"]
    page.screenshot(path=str(ARTIFACTS / "app_many.png"), full_page=True)
    page.close()


def test_many_xrays_with_your_labels_shows_the_report_on_them(browser, app_url, tmp_path):
    """A labels file beside the X-rays: the report on them appears on the page
    (its table and figures), and its files come with answers.csv."""
    names = ["NORMAL_IM-0001-0001.jpeg", "NORMAL_IM-0003-0001.jpeg", "PNEUMONIA-bacterial_person100_bacteria_475.jpeg",
             "PNEUMONIA-viral_person10_virus_35.jpeg"]
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label,site\n" + "".join(f"{n},{n.split('_')[0].split('-')[0]},{i % 2}\n"
                                                     for i, n in enumerate(names)))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url)
    page.get_by_role("tab", name="Many X-rays").click()
    page.locator("#many-files input[type=file]").set_input_files([str(ROOT / "examples" / n) for n in names])
    page.locator("#many-labels input[type=file]").set_input_files(str(labels))
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Analyze all").click()
    report = page.locator("#many-report")
    report.get_by_text("How the model does on your data").wait_for(timeout=90_000)
    text = report.inner_text()
    assert "site = 0" in text and "site = 1" in text and "ROC AUC" in text, text
    assert report.locator("img").count() == 4 and report.locator("img").first.evaluate("i => i.naturalWidth") > 100
    files = page.locator("#many-csv").inner_text().replace("\n", "")   # Gradio breaks a name before its suffix
    assert "answers.csv" in files and "report.html" in files and "report.json" in files
    page.screenshot(path=str(ARTIFACTS / "app_many_report.png"), full_page=True)
    page.close()


def test_the_adult_example_the_reader_cannot_tell_reads_cant_tell(browser, app_url):
    """The bundled NIH pneumonia, through the real app: the reader's probability
    lies in its band, so the page says "Can't tell", with the band on the gauge."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url)
    page.locator("#examples img").first.wait_for(timeout=60_000)
    alts = [page.locator("#examples img").nth(i).get_attribute("alt") for i in range(N_EXAMPLES)]
    page.locator("#examples img").nth(alts.index("Adult, pneumonia; the model can't tell")).click()
    page.locator("#verdict .UNCERTAIN").wait_for(timeout=30_000)
    text = verdict_text(page)
    assert text.startswith("Can't tell") and "can't-tell band" in text and page.locator("#verdict .band").count() == 1
    page.locator("#verdict").screenshot(path=str(ARTIFACTS / "app_adult_cant_tell.png"))
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_cant_tell_reads_neutral_with_its_band_on_the_gauge(browser, app_url, width):
    """An answer in the reader's can't-tell band: "Can't tell" in neutral grey (not
    red, not green), the band drawn on the gauge, one sentence why, no class named."""
    page = browser.new_page(viewport={"width": width, "height": 844})
    page.goto(app_url)
    page.locator("#verdict").wait_for(state="attached", timeout=60_000)
    d = {"answered": True, "refusal": None, "decision": "UNCERTAIN", "probability_pneumonia": 0.41, "threshold": 0.35,
         "band": {"low": 0.22, "high": 0.55}, "heads": heads(0.41, 0.35, 1.0), "heatmap_class": "PNEUMONIA"}
    html = page.evaluate(f"({app_js('ANSWER_JS')})({json.dumps(d)})")
    page.evaluate("h => { document.querySelector('#verdict').innerHTML = h; }", html)
    text = verdict_text(page)
    assert text.startswith("Can't tell") and "22.0% to 55.0%" in text and "none is given" in text
    assert "NORMAL" not in text and "PNEUMONIA" not in text.replace("P(PNEUMONIA)", "").replace("for: PNEUMONIA", "")
    colour = page.locator("#verdict .headline").evaluate("e => getComputedStyle(e).color")
    r, g, b = (int(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3])
    assert max(r, g, b) - min(r, g, b) < 40          # grey: neither the red nor the green of an answer
    band = page.locator("#verdict .band").evaluate("e => [e.style.left, e.style.width]")
    assert [float(v.rstrip("%")) for v in band] == pytest.approx([22.0, 33.0], abs=0.06)
    page.locator("#verdict").scroll_into_view_if_needed()
    page.locator("#verdict").screenshot(path=str(ARTIFACTS / f"app_{width}_cant_tell.png"))
    page.close()


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_api_page_opens_from_its_address_and_shows_a_bundled_xray(browser, app_url, width, height):
    """`/?view=api` opens the API page (Gradio drew it only from the footer link), on
    a phone too, where the footer link now shows; its example is a bundled X-ray,
    not Gradio's bus photo, and the label output says it is for programs."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(app_url)
    page.get_by_role("button", name="Analyze").first.wait_for(timeout=60_000)
    assert page.locator("footer .show-api").is_visible()
    page.goto(app_url + "?view=api")
    page.get_by_text("API name").first.wait_for(timeout=30_000)
    text = page.evaluate("document.body.innerText")
    assert "examples/PNEUMONIA-viral_person10_virus_35.jpeg" in text and "bus.png" not in text
    assert "label (for programs)" in text
    page.close()
