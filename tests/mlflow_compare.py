"""The README's picture of MLflow's compare view, taken from a real store the pipeline wrote (#16).

`python -m tests.browser mlflow-compare [--store mlflow.db] [--out docs/images/mlflow-compare.png]`
serves the store with `mlflow server` on 127.0.0.1 and opens, in Debian's chromium, the compare page
of the newest parent run of each mode. MLflow 3.17 starts its parallel-coordinates plot on the
params that differ and the first metric by name (F), and keeps no URL parameter or stored setting
for it, so this picks J, F and the headline J_and_F there (last: MLflow colours the lines by the
last axis), shows only the params and tags that differ, and screenshots the page.
"""

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rvos.atomic import atomic_file
from rvos.errors import RvosError
from tests.browser import CHROMIUM, FLAGS
from tests.mlflow_server import mlflow_server, parent_runs_to_compare

log = logging.getLogger(__name__)

EXPERIMENT = "rvos"
# the plot's metric axes, in this order: MLflow colours the lines by the last one, the headline
HEADLINE = ["J", "F", "J_and_F"]
VIEWPORT = {"width": 1400, "height": 900}
SQLITE = b"SQLite format 3\x00"  # the first bytes of every SQLite database file
MAX_HEIGHT = 2400  # the picture grows to the page's height, up to this
TIMEOUT_MS = 60_000  # plotly is loaded lazily; minutes are possible on a loaded 2-core CPU
PLOT = ".js-plotly-plot"
TITLES = f"[...document.querySelectorAll('{PLOT} .axis-title')].map((t) => t.textContent)"
AXIS_TITLES = f"() => {TITLES}"
# the plot's last axes are the metrics (params come first), drawn once MLflow has re-rendered it
SHOWS = f"(keys) => {TITLES}.slice(-keys.length).join() === keys.join()"


@dataclass
class ComparePage:
    url: str  # the compare link (on the temporary server)
    run_names: list[str]
    plot_axes: list[str] = field(default_factory=list)  # axis titles of the parallel-coordinates plot
    default_axes: list[str] = field(default_factory=list)  # the same, as MLflow first drew it
    text: str = ""  # the page's visible text when the picture was taken
    screenshot: Path | None = None


def compare_link(server: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's own compare-runs route (as its runs table builds it)."""
    return f"{server}/#/compare-runs?runs={json.dumps(run_ids)}&experiments={json.dumps([experiment_id])}"


def screenshot_compare_view(store: Path, out: Path) -> ComparePage:
    """Serve the sqlite `store` on a free port and picture its compare view into `out` (PNG)."""
    if not store.is_file():
        raise RvosError(f"{store}: no MLflow store there (the stages write mlflow.db at the project root)")
    with store.open("rb") as file:
        if file.read(len(SQLITE)) != SQLITE:
            raise RvosError(f"{store}: not an SQLite database (an MLflow store such as mlflow.db)")
    with tempfile.TemporaryDirectory(prefix="rvos-mlflow-compare-") as scratch:
        server_log = Path(scratch) / "server.log"
        with mlflow_server(store, server_log) as server:
            return compare_view(server, out, str(store))


def compare_view(server: str, out: Path, where: str) -> ComparePage:
    """Picture the compare view of the newest parent run per mode on the running `server` (the
    store `where`, for errors) into `out`; returns what the page showed."""
    from mlflow import MlflowClient

    client = MlflowClient(server)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = parent_runs_to_compare(client, experiment.experiment_id) if experiment else []
    if len(runs) < 2:
        raise RvosError(
            f"{where}: {len(runs)} scored parent run(s) in MLflow experiment '{EXPERIMENT}', the compare "
            "view needs two (tracked `dvc repro` and `dvc exp run -S mode=zero_shot`, say)"
        )
    page = ComparePage(
        compare_link(server, experiment.experiment_id, [r.info.run_id for r in runs]),
        [r.info.run_name for r in runs],
    )
    with tempfile.TemporaryDirectory(prefix="rvos-chromium-") as profile:
        _shoot(page, Path(profile), out)
    log.info("compare view of %s written to %s", ", ".join(page.run_names), out)
    return page


def _shoot(page: ComparePage, profile: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise RvosError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS, viewport=VIEWPORT
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            browser = context.new_page()
            browser.goto(page.url, wait_until="load")
            browser.wait_for_function(f"() => {TITLES}.length > 0")
            page.default_axes = browser.evaluate(AXIS_TITLES)
            _show_headline(browser)
            page.plot_axes = browser.evaluate(AXIS_TITLES)
            _compact(browser)
            page.text = browser.inner_text("body")
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(out) as file:
                file.write(browser.screenshot())
        finally:
            context.close()
    page.screenshot = out


def _show_headline(browser) -> None:  # noqa: ANN001 - a playwright Page
    """Metrics of the parallel-coordinates plot: J, F, J_and_F instead of MLflow's default (F)."""
    close = browser.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():  # MLflow 3's assistant panel opens beside the page in a fresh browser profile
        close.click()
    metrics = browser.locator("div:text-is('Metrics:') + .du-bois-light-select")
    for remove in reversed(metrics.locator(".du-bois-light-select-selection-item-remove").all()):
        remove.click()
    for key in HEADLINE:
        metrics.click()
        browser.keyboard.type(key)
        browser.locator(f'.du-bois-light-select-item-option[title="{key}"]').click()
    browser.keyboard.press("Escape")
    browser.wait_for_function(SHOWS, arg=HEADLINE)


# MLflow scrolls its <main>, not the document: a full-page screenshot would be one viewport
FIT = """() => {
  const main = document.querySelector('main');
  main.scrollTop = 0;
  return main.scrollHeight + (window.innerHeight - main.clientHeight);
}"""


def _compact(browser) -> None:  # noqa: ANN001 - a playwright Page
    """One picture of what matters: plot, run names, the params that differ, the metrics."""
    for table in ("Parameters", "Tags"):
        browser.get_by_role("switch", name=f"{table} - Show diff only").click()
    browser.locator('[aria-label="collapse Artifacts"]').click()  # a file browser, empty-looking here
    height = browser.evaluate(FIT)
    browser.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, MAX_HEIGHT)})
    browser.evaluate(FIT)
