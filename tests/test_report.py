"""`rvos report` / the `report` stage: one self-contained page of a run, looked at in Chromium."""

import base64
import io
import json
import re
import subprocess
import sys

import pytest
from PIL import Image

from tests.browser import open_page
from tests.dvc_project import make_repo, sh


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("report") / "project")
    sh(repo, "dvc", "repro", "--single-item", "metrics", tracking=True)
    sh(repo, "dvc", "repro", "--single-item", "report", tracking=True)
    return repo


def embedded(page: str, mime: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(rf'src="data:{mime};base64,([^"]+)"', page)]


def test_report_shows_the_run(repo):
    page = (repo / "reports" / "report.html").read_text()
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    commit = sh(repo, "git", "rev-parse", "HEAD").strip()
    assert "<td>mode</td><td>one_shot</td>" in page and f"<td>commit</td><td>{commit}</td>" in page
    # the params of make_repo that differ from the shipped ones, with the defaults
    assert "<td>data.source</td><td>local</td><td>synthetic</td>" in page
    assert "<td>metrics.workers</td><td>1</td><td>2</td>" in page and "<td>seed</td>" not in page
    model = "".join(f'<td class="num">{metrics[k]:.3f}</td>' for k in ("J_and_F", "J", "F"))
    assert f"<td>RVOS (this run)</td>{model}" in page
    baseline = metrics["baselines"]["copy_first_frame"]
    assert f'<td>baseline: copy first frame</td><td class="num">{baseline["J_and_F"]:.3f}</td>' in page
    # curves + bars + the 4 gallery strips, as they are in reports/gallery
    pngs = embedded(page, "image/png")
    assert len(pngs) == 6
    assert (repo / "reports" / "gallery" / "worst-1.png").read_bytes() in pngs
    animations = embedded(page, "image/webp")
    assert len(animations) == 4
    for data in animations:
        with Image.open(io.BytesIO(data)) as animation:
            assert animation.format == "WEBP" and animation.n_frames == 6  # every frame of the video
            assert animation.size == (2 * 240, 144)  # prediction | ground truth, 240 wide each
    assert "<script" not in page and "http" not in page  # self-contained


def test_report_opens_in_chromium_without_errors(repo, tmp_path):
    seen = open_page(repo / "reports" / "report.html", tmp_path / "profile", "report")
    assert seen.errors == []
    assert len(seen.images) == 10 and all(image["width"] > 0 for image in seen.images), seen.images
    assert all(url.startswith(("file:", "data:")) for url in seen.requests), seen.requests
    assert seen.screenshot.stat().st_size > 10_000


def test_dvc_plots_page_renders_offline_in_chromium(repo, tmp_path):
    sh(repo, "dvc", "plots", "show", "-o", "dvc_plots")
    page = repo / "dvc_plots" / "index.html"
    seen = open_page(page, tmp_path / "profile", "dvc-plots")
    assert seen.errors == []
    assert seen.vega_charts == page.read_text().count("vegaEmbed(") >= 4  # curves, J&F, IoU, bars
    gallery = [image for image in seen.images if "reports_gallery" in image["src"]]
    assert len(gallery) == 4 and all(image["width"] > 0 for image in gallery), seen.images
    assert all(url.startswith(("file:", "data:")) for url in seen.requests), seen.requests


def test_report_and_gallery_are_on_the_mlflow_parent_run(repo):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rvos").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`dvc.role` = 'parent'")
    # the default store's artifacts live under <root>/mlartifacts (mlflow-artifacts: URIs, which
    # only a server resolves), so they are read from there
    stored = repo / "mlartifacts" / parent.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    assert (stored / "report.html").is_file()
    gallery = sorted(path.name for path in (stored / "gallery").iterdir())
    assert gallery == [f"{name}.png" for name in ("best-1", "best-2", "worst-1", "worst-2")]


def test_bad_inputs_fail_in_one_line_and_keep_the_report(tmp_path):
    repo = make_repo(tmp_path / "project", val=2)
    rvos = [sys.executable, "-m", "rvos.cli"]  # the `rvos` command, with this repository's code
    for command in ("metrics", "report"):
        assert subprocess.run([*rvos, command], cwd=repo, capture_output=True).returncode == 0
    before = (repo / "reports" / "report.html").read_bytes()
    damages = [
        ("reports/metrics.json", None, "reports/metrics.json: missing (run the metrics stage first)"),
        ("reports/metrics.json", "{not json", "reports/metrics.json: not valid JSON"),
        ("reports/metrics.json", "[1, 2]", "reports/metrics.json: not a JSON object"),
        ("reports/per_sequence.csv", None, "reports/per_sequence.csv: missing"),
        (
            "reports/per_sequence.csv",
            "sequence,J\nval-0,0.5\n",
            "reports/per_sequence.csv: column 'J&F' is missing",
        ),
    ]
    for name, content, message in damages:
        kept = (repo / name).read_bytes()
        if content is None:
            (repo / name).unlink()
        else:
            (repo / name).write_text(content)
        result = subprocess.run([*rvos, "report"], cwd=repo, capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr)
        assert message in result.stderr.strip().splitlines()[-1], (name, result.stderr)
        assert (repo / "reports" / "report.html").read_bytes() == before
        (repo / name).write_bytes(kept)


def test_browser_tests_fail_without_chromium(monkeypatch, tmp_path):
    import tests.browser

    monkeypatch.setattr(tests.browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(AssertionError, match="no-chromium is missing: `make browser` installs"):
        open_page(tmp_path / "page.html", tmp_path / "profile", "none")
