"""The tiny preset's ``snakemake --report`` page in headless Chromium: what a user opens.

Opt-in (it needs the system's Chromium: ``apt-get install chromium``, and Playwright's Python
package from requirements.lock; no browser is downloaded). CI sets BRACTIVATE_BROWSER_TESTS=1:
    BRACTIVATE_BROWSER_TESTS=1 pytest tests/test_browser.py
"""

from __future__ import annotations

import os
import re
import shutil
import pytest

from helpers import ROOT, snakemake

CHROMIUM = os.environ.get("BRACTIVATE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("BRACTIVATE_BROWSER_TESTS") != "1",
                       reason="browser tests are opt-in: set BRACTIVATE_BROWSER_TESTS=1 (needs the "
                       "chromium apt package and playwright)"),
]


def report_entries() -> dict[str, tuple[str, str]]:
    """Every ``report(...)`` output of the workflow's rules: path -> (category, caption file).
    Paths and captions may be f-strings over the names of bractivate.outputs, and the table and
    figure rules are loops over the tables' file names (``_table``) and ``FIGURES`` (``_figure``)."""
    from bractivate.outputs import CLAIMS_TABLE, FIGURES, TABLES, TRIAL_TABLES, table_names

    loops = {"_figure": FIGURES, "_table": tuple(table_names().values())}

    def expand(template: str, variable: str | None, value: str | None) -> str:
        names = {"TABLES": TABLES, "TRIAL_TABLES": TRIAL_TABLES, "CLAIMS_TABLE": CLAIMS_TABLE, variable: value}
        return eval("f" + repr(template), {}, names)  # noqa: S307 - the workflow's own rule text

    entries = {}
    for rules in sorted((ROOT / "rules").glob("*.smk")):
        for path, caption, category in re.findall(
                r'report\(\s*f?"([^"]+)",\s*caption=f?"([^"]+)",\s*category="([^"]+)",?\s*\)', rules.read_text()):
            variable = next((name for name in loops if "{" + name + "}" in path), None)
            for value in loops.get(variable, (None,)):
                entries[expand(path, variable, value)] = (
                    category, (rules.parent / expand(caption, variable, value)).resolve().name)
    return entries


def caption_start(rst: str) -> str:
    """The caption's first words as the report renders them (no rst markup, no template)."""
    text = (ROOT / "report" / rst).read_text().split("{{")[0]
    text = re.sub(r"\*\*|\*|``", "", text)
    return " ".join(text.split()[:4])


@pytest.fixture(scope="module")
def page(tiny_run):
    from playwright.sync_api import sync_playwright

    snakemake("--configfile", "presets/tiny.yaml", "--report", "results/report.html", cwd=tiny_run, timeout=300)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((tiny_run / "results/report.html").as_uri())
        page.wait_for_function("typeof app !== 'undefined' && document.querySelector('#app nav, #app div')")
        page.errors = errors
        yield page
        browser.close()


def test_report_loads_without_console_errors(page):
    page.wait_for_timeout(500)
    assert page.errors == []


def test_every_table_and_figure_is_listed_with_its_caption(page):
    entries = report_entries()
    assert len(entries) >= 14, entries  # 6 figures, 8 tables
    results = page.evaluate("results")
    listed = {path: category for category, subcategories in page.evaluate("categories").items()
              for paths in subcategories.values() for path in paths}
    assert set(listed) == set(results) == set(entries), set(listed) ^ set(entries)
    for category in ("Figures", "Tables"):
        # from the menu, as a reader goes: a category's list is built when it is first shown
        page.evaluate("app.setView({navbarMode: 'menu'})")
        shows(page, category)
        page.evaluate(f"app.showCategory({category!r})")
        for path, (cat, _) in entries.items():
            if cat == category:
                shows(page, path)
    for path, (category, rst) in entries.items():
        assert listed[path] == category
        assert caption_start(rst) in " ".join(re.sub(r"<[^>]+>", "", results[path]["caption"]).split()), path
        page.evaluate(f"app.showResultInfo({path!r})")
        shows(page, "Description")
        shows(page, caption_start(rst))
    assert page.errors == []


def shows(page, text: str) -> None:
    """Wait until the page's visible text holds ``text``, in any case (headings are styled upper
    case; React renders after each view change)."""
    page.wait_for_function("t => document.querySelector('#app').innerText.replace(/\\s+/g, ' ')"
                           ".toLowerCase().includes(t.toLowerCase())", arg=text, timeout=5000)


def test_every_figure_renders(page):
    figures = [p for p, (category, _) in report_entries().items() if category == "Figures"]
    assert figures
    for path in figures:
        page.evaluate(f"app.setView({{content: 'img', contentPath: results[{path!r}].data_uri, "
                      f"resultPath: {path!r}}})")
        image = page.wait_for_selector("#app img[src^='data:image/png']")
        page.wait_for_function("img => img.complete", arg=image)
        width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert width > 300 and height > 300, (path, width, height)
    assert page.errors == []


def test_table2_entry_shows_the_bractivate_row(page):
    path = "results/tables/table2_dice.html"
    page.evaluate(f"app.setView({{content: 'html', contentPath: results[{path!r}].data_uri, "
                  f"resultPath: {path!r}}})")
    frame = page.wait_for_selector("#app iframe").content_frame()
    frame.wait_for_selector("table")
    rows = [r.split("\t") for r in frame.inner_text("tbody").splitlines()]
    (bractivate,) = [r for r in rows if r[0] == "Bractivate"]
    # a number, flagged where the tiny model predicts one class everywhere
    assert re.fullmatch(r"[01]\.\d{3} ± – \(\d\.\de\d\)( \[collapsed 1/1\])?", bractivate[1]), bractivate
    assert {r[0] for r in rows} >= {"Bractivate", "Random search", "UNet", "NAS-UNet"}
    assert page.errors == []
