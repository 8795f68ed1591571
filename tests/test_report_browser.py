"""The report as a person sees it: built by the real snakemake, opened in headless Chromium.

Driven over the Chrome DevTools Protocol (tests/cdp.py, standard library only). Console errors,
uncaught exceptions, error log entries and failed loads are collected from every frame of the
page (the report's viewer shows HTML results in data: iframes); figures are checked as
decoded inside the page (naturalWidth > 0, laid out with non-zero size); every request must
stay inside the file (file:, data:, blob:), so the report is self-contained.
"""

from __future__ import annotations

import base64
import json

import pandas as pd
import pytest

import cdp
from conftest import TINY

CHROMIUM = cdp.find_chromium()
FIGURES = {"epoch_duration.png", "speedup.png", "time_split.png", "quality.png",
           "published.png"}
PAGES = {"findings.html", "table.html", "summary.html", "published_vs_reproduced.html"}
LOCAL = ("file:", "data:", "blob:", "about:")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH: install Debian's "
                       "`chromium` (as .ci/run does) or set SPEEDLIMIT_CHROMIUM"),
]

SHOWN_IMAGE = """(() => {
  const img = [...document.querySelectorAll('#app img')].find(i => i.src === %s);
  if (!img || !img.complete) return null;
  const r = img.getBoundingClientRect();
  return [img.naturalWidth, img.naturalHeight, r.width, r.height];
})()"""


def show(browser, content: str, path: str) -> str:
    """Open a result in the report's viewer, as its eye button does; return its data URI."""
    p = json.dumps(path)
    browser.evaluate(f"app.setView({{content: '{content}', resultPath: {p}, "
                     f"contentPath: results[{p}].data_uri}})")
    return browser.evaluate(f"results[{p}].data_uri")


def test_report_renders_in_headless_chromium(project, tmp_path):
    project.write_config("tiny.yaml", TINY)
    cfg = ["--configfile", "config.yaml", "tiny.yaml"]
    project.run("--cores", "all", *cfg)
    project.run("--report", "report.html", *cfg)
    report = project.path / "report.html"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    with cdp.Browser(CHROMIUM, tmp_path / "browser") as browser:
        browser.navigate(report.as_uri())
        # The front page: the workflow description with the computed findings.
        browser.wait_for("typeof app !== 'undefined' && "
                         "document.body.innerText.includes('At a glance')")
        front = browser.evaluate("document.querySelector('#app').innerText")
        for needle in ("Fastest num_workers per batch size", "Against the published table",
                       "What was run", "Hardware", "How to reproduce", "logical CPUs"):
            assert needle in front, needle
        # Its top is on screen (not hidden by the viewer's vertical centring).
        top = browser.evaluate("[...document.querySelectorAll('#app strong')].find("
                               "s => s.textContent === 'At a glance').getBoundingClientRect().top")
        assert 0 <= top < 600
        browser.screenshot(shots / "front.png")

        results = browser.evaluate("Object.fromEntries(Object.entries(results).map("
                                   "([k, v]) => [k, [v.mime_type, v.caption.length]]))")
        names = {path.rsplit("/", 1)[-1]: path for path in results}
        assert FIGURES | PAGES <= set(names)

        for name in sorted(FIGURES):
            path = names[name]
            assert results[path][0] == "image/png"
            assert results[path][1] > 100, f"{name} has no caption"
            uri = show(browser, "img", path)
            width, height, shown_w, shown_h = browser.wait_for(SHOWN_IMAGE % json.dumps(uri))
            assert width > 300 and height > 200 and shown_w > 100 and shown_h > 100, name
        browser.screenshot(shots / "figure.png")

        for name in sorted(PAGES):
            path = names[name]
            assert results[path][0] == "text/html" and results[path][1] > 100
            uri = show(browser, "html", path)
            ctx, session = browser.frame_context(uri[:200])
            browser.wait_for("document.readyState === 'complete'", context=ctx, session=session)
            rows = browser.evaluate("document.querySelector('table.sortable').tBodies[0]"
                                    ".rows.length", ctx, session)
            # Images inside the page, if any, must have loaded too.
            broken = browser.evaluate("[...document.images].filter(i => !i.naturalWidth)"
                                      ".length", ctx, session)
            assert broken == 0, name
            if name == "findings.html":
                text = browser.evaluate("document.body.innerText", ctx, session)
                assert "was fastest" in text and "Published vs reproduced" in text
                assert "batch_size 500" in text and "Effective configuration" in text
                browser.screenshot(shots / "findings.png")
            if name == "table.html":
                table = pd.read_csv(project.path / "results" / "table.csv")
                assert rows == len(table)
                # Sorting works: click epoch_duration's header, the column comes out ordered.
                values = browser.evaluate("""(() => {
                  const t = document.querySelector('table.sortable');
                  const col = [...t.tHead.rows[0].cells].findIndex(
                      c => c.textContent === 'epoch_duration');
                  t.tHead.rows[0].cells[col].click();
                  return [...t.tBodies[0].rows].map(r => parseFloat(
                      r.cells[col].getAttribute('data-value')));
                })()""", ctx, session)
                assert values == sorted(table["epoch_duration"].tolist())
                browser.screenshot(shots / "table.png")
            if name == "summary.html":
                assert rows == len(pd.read_csv(project.path / "results" / "summary.csv"))

        browser.pump(0.5)
        assert browser.console_errors() == []
        outside = [u for u in browser.requested_urls() if not u.startswith(LOCAL)]
        assert outside == [], outside
    for shot in ("front", "figure", "findings", "table"):
        assert (shots / f"{shot}.png").stat().st_size > 10_000


def test_the_browser_check_sees_errors_in_frames_and_broken_images(tmp_path):
    """A control: the same mechanism flags what the report must not have."""
    inner = "<script>console.error('inner trouble')</script><p>inside</p>"
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><img id=broken src='data:image/png;base64,AAAA'>"
        f"<iframe src='data:text/html;base64,{base64.b64encode(inner.encode()).decode()}'>"
        "</iframe>"
        "<script>undefined_function()</script></body></html>")
    with cdp.Browser(CHROMIUM, tmp_path / "browser") as browser:
        browser.navigate(page.as_uri())
        ctx, session = browser.frame_context("data:text/html")
        assert browser.evaluate("document.body.innerText", ctx, session) == "inside"
        assert browser.evaluate("document.getElementById('broken').naturalWidth") == 0
        browser.pump(0.3)
        errors = "\n".join(browser.console_errors())
    assert "inner trouble" in errors and "undefined_function" in errors
