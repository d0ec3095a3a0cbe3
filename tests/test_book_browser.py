"""Open the built book in headless Chromium (system package, driven by Playwright) and check what a reader sees.

Checks, page by page: math is typeset by the local MathJax (no raw TeX left), every image loads, no request
leaves the machine, and the console shows no JavaScript error. Every kernel-free player changes frame when its
slider moves, and the slider explorers (truncflow.plot.slider_explorer: the truncation map of Section 2 over the
rotation angle, the separated flow over flow time s) show a new frame and a new value when the slider is moved
with the keyboard. Each page is opened once, in one tab per pytest worker that goes from page to page (class
Tab), and every check that applies to it runs on that one load. A screenshot of the top of each page is kept in
book/_build/screenshots/ (TRUNCFLOW_SCREENSHOTS=full for whole pages: rendering a long page whole takes 5-30 s
each). `make test` builds the book before running this; run
alone, it builds it if missing. TRUNCFLOW_BOOK_HTML=DIR checks a book built elsewhere
(for example a partial book: then select the player tests with -k player).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("TRUNCFLOW_BOOK_HTML", ROOT / "book" / "_build" / "html"))
SHOTS = HTML.parent / "screenshots"
FULL_SHOTS = os.environ.get("TRUNCFLOW_SCREENSHOTS") == "full"


def _toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            pages.append(ch["file"])
    return [p.rsplit(".", 1)[0] for p in pages]


PAGES = _toc_pages()


@pytest.fixture(scope="module")
def browser():
    if not (HTML / "index.html").exists():
        assert "TRUNCFLOW_BOOK_HTML" not in os.environ, f"no book in TRUNCFLOW_BOOK_HTML={HTML}"
        subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", ".", "--toc", "_toc.yml",
                        "--config", "book/_config.yml", "--path-output", "book"], cwd=ROOT, check=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: run `make browser-deps` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Tab:
    """One browser tab that goes from page to page, as a reader's does (each page a fresh document, its scripts
    run anew). What the current page requested from outside the machine and what its console reported are
    collected per page. One tab for all pages, not one per page: a new tab starts a new renderer process, which
    compiles MathJax and the theme's scripts again (measured on the whole book, two workers: 155 CPU-s of
    Chromium with a tab per page, 94-102 with one tab per worker)."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.external, self.errors = [], []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, r):
        if r.request.url.startswith(("file://", "data:", "blob:")):
            r.continue_()
        else:
            self.external.append(r.request.url)
            r.abort()

    def open(self, page_path):
        """Load one page of the book and wait for MathJax to finish; returns the page and the (fresh) lists of
        external requests and console errors it gathers."""
        self.page.goto("about:blank")
        self.external, self.errors = [], []
        page = self.page
        page.goto((HTML / f"{page_path}.html").as_uri(), wait_until="load")
        page.wait_for_function(
            "() => window.MathJax === undefined || (MathJax.startup && MathJax.startup.promise)", timeout=20000)
        page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")
        page.wait_for_timeout(300)
        return page, self.external, self.errors


@pytest.fixture(scope="module")
def tab(browser):
    t = Tab(browser)
    yield t
    t.page.close()


def test_every_toc_page_was_built():
    missing = [p for p in PAGES if not (HTML / f"{p}.html").exists()]
    assert (HTML / "index.html").exists() or missing == [], "book not built"
    assert not missing, f"pages missing from the build: {missing}"


def _check_offline_render(page, page_path, external, errors):
    """Math typeset, no raw TeX, images loaded, nothing fetched from outside, no console error."""
    src = next(ROOT.glob(f"{page_path}.*"))          # the notebook or Markdown page it was built from
    has_tex_source = "$" in src.read_text()
    n_math = page.evaluate("() => document.querySelectorAll('mjx-container').length")
    raw = page.evaluate(r"""() => {
        const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
        const bad = [];
        while (walker.nextNode()) {
            const n = walker.currentNode;
            if (n.parentElement.closest('pre, code, script, style, mjx-container, .highlight, .output')) continue;
            const t = n.textContent;
            if (t.includes('$$') || /\\(frac|beta|mathcal|tau)\b/.test(t)) bad.push(t.trim().slice(0, 80));
        }
        return bad;
    }""")
    images = page.evaluate("""() => Array.from(document.images).map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))""")
    assert not external, f"requests left the machine: {external[:5]}"
    assert not errors, f"JavaScript console errors: {errors[:5]}"
    if has_tex_source:
        assert n_math > 0, "page has TeX in its source but MathJax typeset nothing"
    assert not raw, f"raw TeX left untypeset: {raw[:5]}"
    broken = [i["src"] for i in images if not i["ok"]]
    assert not broken, f"images that did not load: {broken}"


# The chapters that draw pictures show them as loaded images.
FIGURE_PAGES = ("nbs/00_index", "nbs/10_network")


def _check_figures(page, page_path):
    n = page.evaluate("() => Array.from(document.images).filter(i => i.naturalWidth > 100).length")
    assert n >= 1, f"{page_path}: no figure shown"


def _players(page_path):
    html = (HTML / f"{page_path}.html").read_text()
    return html.count('class="anim-slider"')


def _check_players(page, page_path):
    """Every kernel-free player (matplotlib jshtml, see truncflow.plot.player_html) changes frame when its
    slider moves, and its readout (if any) follows."""
    sliders = page.query_selector_all("input.anim-slider")
    assert sliders, f"{page_path}: the HTML has a player but the page shows no slider"
    for s in sliders:
        img_id = s.get_attribute("id").replace("_anim_slider", "_anim_img")
        before = page.eval_on_selector(f"#{img_id}", "i => i.src")
        last = int(s.get_attribute("max"))
        assert last >= 1, "a player needs more than one frame"
        now = int(page.eval_on_selector(f"#{s.get_attribute('id')}", "el => el.value"))
        target = 0 if now == last else last             # an explorer checked before may have left it at the end
        page.eval_on_selector(f"#{s.get_attribute('id')}",
                              f"el => {{ el.value = {target}; el.dispatchEvent(new Event('input')); }}")
        page.wait_for_timeout(100)
        after = page.eval_on_selector(f"#{img_id}", "i => i.src")
        shown = page.eval_on_selector(f"#{img_id}", "i => i.complete && i.naturalWidth > 0")
        assert after != before, f"{page_path}: moving the slider did not change the frame"
        assert shown, f"{page_path}: the new frame did not load"
        value_id = s.get_attribute("id").replace("_anim_slider", "_anim_value")
        if page.query_selector(f"#{value_id}"):          # a player with a readout (labels=...)
            assert page.eval_on_selector(f"#{value_id}", "o => o.textContent") == \
                s.get_attribute("aria-valuetext"), f"{page_path}: the readout does not follow the slider"


# The slider explorers of the book (truncflow.plot.slider_explorer) and the parameter their readout names.
EXPLORERS = {"nbs/11_plot": "rotation angle θ = ", "nbs/30_widgets": "flow time s = "}


def _check_explorer(page, page_path):
    """A reader moves an explorer's slider with the keyboard: the image and the value shown both change."""
    readouts = page.query_selector_all(".anim-readout output")
    assert readouts, f"{page_path}: no slider explorer (a player with a value readout) on the page"
    out = readouts[0]
    slider_id = out.get_attribute("for")
    img = f"#{slider_id.replace('_anim_slider', '_anim_img')}"
    page.wait_for_function(f"() => document.querySelector('{img}').src.startsWith('data:image/png')")
    def shown():
        return page.eval_on_selector(img, "i => i.src"), out.text_content()
    src0, value0 = shown()
    assert value0.startswith(EXPLORERS[page_path]), f"{page_path}: readout {value0!r}"
    page.focus(f"#{slider_id}")
    page.keyboard.press("ArrowRight")                  # one step, as a reader would move it
    page.wait_for_timeout(100)
    src1, value1 = shown()
    page.keyboard.press("End")                         # to the last frame
    page.wait_for_timeout(100)
    src2, value2 = shown()
    assert page.eval_on_selector(f"#{slider_id}", "s => s.value") == page.get_attribute(f"#{slider_id}", "max")
    assert len({src0, src1, src2}) == 3, f"{page_path}: moving the slider did not change the frame"
    assert len({value0, value1, value2}) == 3, f"{page_path}: the value shown did not change: {value0!r}"
    assert all(v.startswith(EXPLORERS[page_path]) for v in (value1, value2)), (value1, value2)
    assert page.eval_on_selector(img, "i => i.complete && i.naturalWidth > 100"), "the new frame did not load"


@pytest.mark.parametrize("page_path", PAGES)
def test_page(tab, page_path):
    """One load of the page; the offline-render checks, then figures, players and explorers where the page
    has them (the slider checks move sliders, so they come after the screenshot)."""
    page, external, errors = tab.open(page_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{page_path.replace('/', '_')}.png"), full_page=FULL_SHOTS)
    _check_offline_render(page, page_path, external, errors)
    if page_path in FIGURE_PAGES:
        _check_figures(page, page_path)
    if page_path in EXPLORERS:
        _check_explorer(page, page_path)
    if _players(page_path):
        _check_players(page, page_path)
    assert not external and not errors, (external, errors)


def test_the_book_has_players_and_explorers():
    """The checks of test_page that only some pages trigger do run: the book has players, and every page
    named in FIGURE_PAGES and EXPLORERS is in the table of contents."""
    assert any(_players(p) for p in PAGES if (HTML / f"{p}.html").exists()), \
        "no page of the book has a static interactive player"
    missing = [p for p in (*FIGURE_PAGES, *EXPLORERS) if p not in PAGES]
    assert not missing, f"pages named in the browser checks but not in _toc.yml: {missing}"
