"""Open a local page in headless Debian Chromium (driven by Playwright) and report what a person would see.

Chromium is the system's (`make browser` installs Debian's package); Playwright only drives it, it
downloads no browser of its own. A missing /usr/bin/chromium fails the test that needs it: CI must
not pass without having looked at the page.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots, ignored by git
# Playwright adds --headless itself (headless=True); the rest keep the browser off the network and
# quiet: no component updates, sync or first-run work in a fresh profile.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# after the load event: wait until every image is decoded (or has failed), then describe them
IMAGES = """async () => {
  const images = [...document.images];
  await Promise.all(images.map((i) => i.decode().catch(() => null)));
  const short = (src) => (src.startsWith('data:') ? src.slice(0, 40) : src);
  return images.map((i) => ({src: short(i.currentSrc), width: i.naturalWidth, alt: i.alt}));
}"""
CHARTS = "[...document.querySelectorAll('.vega-embed')]"
DRAWN = f"() => {CHARTS}.every((e) => e.querySelector('svg, canvas'))"
VIDEOS = (
    "() => [...document.querySelectorAll('video')].map((v) => ({src: v.currentSrc, ready: v.readyState}))"
)


@dataclass
class Page:
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    images: list[dict] = field(default_factory=list)
    videos: list[dict] = field(default_factory=list)
    vega_charts: int = 0  # vega-embed containers that hold a drawn chart (svg or canvas)
    screenshot: Path | None = None


def open_page(page_file: Path, profile: Path, name: str) -> Page:
    """Load `page_file` in a fresh profile folder `profile`; screenshot to tests/artifacts/<name>.png."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: `make browser` installs Debian's chromium"
    from playwright.sync_api import sync_playwright

    seen = Page(screenshot=ARTIFACTS / f"{name}.png")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and seen.errors.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: seen.errors.append(f"exception: {e}"))
            page.on("requestfailed", lambda r: seen.errors.append(f"failed: {r.url[:80]}"))
            page.on("request", lambda r: seen.requests.append(r.url))
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            seen.images = page.evaluate(IMAGES)
            seen.videos = page.evaluate(VIDEOS)
            page.wait_for_function(DRAWN, timeout=30_000)  # vega-embed draws asynchronously after load
            seen.vega_charts = page.evaluate(f"() => {CHARTS}.length")
            page.screenshot(path=str(seen.screenshot), full_page=True)
        finally:
            context.close()
    log.info("screenshot of %s: %s", page_file, seen.screenshot)
    return seen


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.browser mlflow-compare`: the README's picture of MLflow's compare view."""
    import argparse

    from rvos.errors import exit_on_user_error
    from rvos.logs import setup_logging

    parser = argparse.ArgumentParser(prog="python -m tests.browser", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser("mlflow-compare", help="screenshot MLflow's compare view of a store")
    compare.add_argument("--store", type=Path, default=Path("mlflow.db"), help="sqlite store (mlflow.db)")
    compare.add_argument("--out", type=Path, default=Path("docs/images/mlflow-compare.png"), help="PNG")
    args = parser.parse_args(argv)
    setup_logging()
    from tests.mlflow_compare import screenshot_compare_view

    with exit_on_user_error():
        screenshot_compare_view(args.store, args.out)


if __name__ == "__main__":
    main()
