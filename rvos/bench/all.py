"""`rvos bench all`: every benchmark in one run, each figure with its ratio to its anchor.

A benchmark whose inputs or anchor this machine lacks (no pipeline data for `loader`, no official
evaluation code for `metrics`' ratio) prints one `skip <name>: <why>` line and the others go on.
`dvc status` is timed here too: a no-op status, median of `repeats`, against the 3 s goal.
"""

import logging
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rvos import paths
from rvos.errors import RvosError

log = logging.getLogger(__name__)
DVC_STATUS_GOAL_S = 3.0
BENCHES = ("infer", "loader", "train", "metrics", "demo-memory", "dvc-status")


def bench_dvc_status(repeats: int = 3, cwd: Path = Path(".")) -> list[str]:
    dvc = shutil.which("dvc")
    if dvc is None:
        raise RvosError("dvc is not on PATH")
    if not (cwd / "dvc.yaml").is_file():
        raise RvosError(f"{cwd.resolve()}: no dvc.yaml here (run it in the project)")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([dvc, "status", "-q"], cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return [
        f"dvc status (no-op): {median:.2f} s median of {repeats}, "
        f"x{DVC_STATUS_GOAL_S / median:.2f} of the {DVC_STATUS_GOAL_S:.0f} s goal (>1: faster)"
    ]


def benchmarks(params: Path, official: Path | None, workdir: Path) -> dict[str, Callable[[], list[str]]]:
    """Each benchmark with the settings of its own command's defaults."""
    from rvos.bench.demo_memory import bench_demo_memory
    from rvos.bench.infer import bench_infer
    from rvos.bench.loader import bench_loader
    from rvos.bench.metrics import bench_metrics
    from rvos.bench.train import bench_train

    def loader() -> list[str]:
        if not paths.LMDB.is_dir():
            raise RvosError(f"{paths.LMDB} not found (run dvc repro index first)")
        return bench_loader(params, 200, 5)

    def metrics() -> list[str]:
        lines = [bench_metrics(official, None, workdir / "metrics", 3)]
        if official is None:
            lines.append("  (ratio to the official code skipped: give --official DAVIS_EVALUATION_CHECKOUT)")
        return lines

    return {
        "infer": bench_infer,
        "loader": loader,
        "train": lambda: bench_train(params, 5, "auto"),
        "metrics": metrics,
        "demo-memory": lambda: bench_demo_memory(params, [60, 600], (720, 1280), workdir / "demo-memory"),
        "dvc-status": bench_dvc_status,
    }


def bench_all(
    params: Path, official: Path | None, workdir: Path, only: list[str] | None = None
) -> Iterator[str]:
    """Run the benchmarks (all, or those in `only`) in turn -> their lines, as each one finishes."""
    runs = benchmarks(params, official, workdir)
    for name in only or BENCHES:
        log.info("benchmark %s...", name)
        try:
            yield from runs[name]()
        except RvosError as err:
            yield f"skip {name}: {err}"
