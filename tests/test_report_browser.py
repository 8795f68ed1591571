"""The report as a person sees it: built by the real snakemake, opened in headless Chromium.

Driven by Selenium through Debian's ``chromium-driver`` (a maintained WebDriver client, not a
hand-written DevTools one). Console errors, uncaught exceptions, error log entries and failed
loads are read from Chrome's ``browser`` and ``performance`` logs (``goog:loggingPrefs``),
which cover every frame of the page (the report's viewer shows HTML results in data:
iframes); figures are checked as decoded inside the page (naturalWidth > 0, laid out with
non-zero size); every request must stay inside the file (file:, data:, blob:), so the
report is self-contained.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from selenium import webdriver
from selenium.common.exceptions import JavascriptException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from conftest import TINY

# Debian's packages; $SPEEDLIMIT_CHROMIUM / $SPEEDLIMIT_CHROMEDRIVER point elsewhere.
CHROMIUM = shutil.which(os.environ.get("SPEEDLIMIT_CHROMIUM", "chromium"))
CHROMEDRIVER = shutil.which(os.environ.get("SPEEDLIMIT_CHROMEDRIVER", "chromedriver"))
MISSING = [pkg for pkg, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
           if path is None]
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--window-size=1400,1000"]
FIGURES = {"epoch_duration.png", "speedup.png", "time_split.png", "quality.png", "race.png",
           "published.png"}
PAGES = {"findings.html", "table.html", "summary.html", "published_vs_reproduced.html"}
LOCAL = ("file:", "data:", "blob:", "about:")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING), reason=f"no {' or '.join(MISSING)}: install Debian's "
                       "`chromium` and `chromium-driver` (as .ci/run does)"),
]

SHOWN_IMAGE = """(() => {
  const img = [...document.querySelectorAll('#app img')].find(i => i.src === %s);
  if (!img || !img.complete) return null;
  const r = img.getBoundingClientRect();
  return [img.naturalWidth, img.naturalHeight, r.width, r.height];
})()"""


class Browser:
    """Selenium's Chrome driver, with what Chrome logged kept (reading a log empties it)."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={workdir / 'profile'}"]:
            options.add_argument(flag)
        # Start on about:blank, not on the new-tab page (with Debian's search engine it asks
        # start.duckduckgo.com), so that every request logged is the test's own.
        options.add_experimental_option("prefs", {"session.restore_on_startup": 4,
                                                  "session.startup_urls": ["about:blank"]})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # An explicit driver path: Selenium Manager is never asked to download anything.
        service = Service(executable_path=CHROMEDRIVER,
                          log_output=str(workdir / "chromedriver.log"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.console: list[dict] = []
        self.events: list[dict] = []

    def close(self) -> None:
        self.driver.quit()

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the current frame."""
        return self.driver.execute_script(f"return ({expression});")

    def wait_for(self, expression: str, timeout: float = 30):
        """The first truthy value of ``expression`` (errors while it runs count as not yet)."""
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(JavascriptException,)).until(
            lambda _: self.evaluate(expression), f"timed out waiting for: {expression}")

    def enter_frame(self, url_prefix: str, timeout: float = 20) -> None:
        """Switch into the iframe showing a URL that starts with ``url_prefix``, once loaded."""
        prefix = json.dumps(url_prefix)
        frame = self.wait_for("[...document.querySelectorAll('iframe')].find("
                              f"f => f.src.startsWith({prefix}))", timeout)
        self.driver.switch_to.frame(frame)
        self.wait_for(f"location.href.startsWith({prefix}) && "
                      "document.readyState === 'complete'", timeout)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(self.driver.get_screenshot_as_png())
        return path

    def read_logs(self) -> None:
        self.console += self.driver.get_log("browser")
        self.events += [json.loads(e["message"])["message"]
                        for e in self.driver.get_log("performance")]

    def console_errors(self) -> list[str]:
        """Console errors and assertions, uncaught exceptions, error log entries and failed
        loads, from every frame."""
        self.read_logs()
        out = [f"{e.get('source')}: {e['message']}" for e in self.console
               if e["level"] == "SEVERE"]
        for event in self.events:
            p = event.get("params", {})
            if event.get("method") == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"network: {p.get('errorText')} ({p.get('type')})")
        return out

    def requested_urls(self) -> list[str]:
        self.read_logs()
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]


@contextlib.contextmanager
def chromium(workdir: Path):
    browser = Browser(workdir)
    try:
        yield browser
    finally:
        browser.close()


def show(browser: Browser, content: str, path: str) -> str:
    """Open a result in the report's viewer, as its eye button does; return its data URI."""
    p = json.dumps(path)
    browser.driver.execute_script(f"app.setView({{content: '{content}', resultPath: {p}, "
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

    with chromium(tmp_path / "browser") as browser:
        browser.driver.get(report.as_uri())
        # The front page: the workflow description with the computed findings.
        browser.wait_for("typeof app !== 'undefined' && "
                         "document.body.innerText.includes('The answer')")
        front = browser.evaluate("document.querySelector('#app').innerText")
        for needle in ("DataLoader(dataset, batch_size=100", "How sure", "What was run",
                       "Hardware", "How to reproduce", "logical CPUs"):
            assert needle in front, needle
        # Its top is on screen (not hidden by the viewer's vertical centring).
        top = browser.evaluate("[...document.querySelectorAll('#app strong')].find("
                               "s => s.textContent === 'The answer').getBoundingClientRect().top")
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
            browser.enter_frame(uri[:200])
            rows = browser.evaluate("document.querySelector('table.sortable').tBodies[0]"
                                    ".rows.length")
            # Images inside the page, if any, must have loaded too.
            broken = browser.evaluate("[...document.images].filter(i => !i.naturalWidth)"
                                      ".length")
            assert broken == 0, name
            if name == "findings.html":
                text = browser.evaluate("document.body.innerText")
                assert "Fastest in one run" in text and "Published vs reproduced" in text
                assert "batch_size 500" in text and "Effective configuration" in text
                assert "vs the fastest tried" in text  # the answer table, atop the page
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
                })()""")
                assert values == sorted(table["epoch_duration"].tolist())
            if name == "summary.html":
                assert rows == len(pd.read_csv(project.path / "results" / "summary.csv"))
            browser.driver.switch_to.default_content()
            if name in ("findings.html", "table.html"):
                browser.screenshot(shots / f"{name.removesuffix('.html')}.png")

        time.sleep(0.5)  # let late messages arrive
        assert browser.console_errors() == []
        urls = browser.requested_urls()
        assert report.as_uri() in urls  # the log saw the page's own requests
        outside = [u for u in urls if not u.startswith(LOCAL)]
        assert outside == [], outside
    for shot in ("front", "figure", "findings", "table"):
        assert (shots / f"{shot}.png").stat().st_size > 10_000


def test_the_browser_check_sees_errors_in_frames_and_broken_images(tmp_path):
    """A control: the same mechanism flags what the report must not have."""
    inner = "<script>console.error('inner trouble')</script><p>inside</p>"
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><img id=broken src='data:image/png;base64,AAAA'>"
        "<img src='missing.png'><img src='http://127.0.0.1:9/outside.png'>"
        f"<iframe src='data:text/html;base64,{base64.b64encode(inner.encode()).decode()}'>"
        "</iframe>"
        "<script>undefined_function()</script></body></html>")
    with chromium(tmp_path / "browser") as browser:
        browser.driver.get(page.as_uri())
        assert browser.evaluate("document.getElementById('broken').naturalWidth") == 0
        browser.enter_frame("data:text/html")
        assert browser.evaluate("document.body.innerText") == "inside"
        time.sleep(0.3)
        errors = "\n".join(browser.console_errors())
        outside = [u for u in browser.requested_urls() if not u.startswith(LOCAL)]
    assert "inner trouble" in errors and "undefined_function" in errors, errors
    assert "ERR_FILE_NOT_FOUND" in errors, errors
    assert outside == ["http://127.0.0.1:9/outside.png"], outside
