"""`rvos bench metrics`: our DAVIS evaluation against the official code, on DAVIS-val-sized data.

The data set is generated deterministically: 30 sequences, 2000 frames at 480x854 and 61 objects
(the size of DAVIS-2017 val), moving polygons as ground truth with a void ring around the objects in
every third sequence, and perturbed predictions for both tasks (jittered, rescaled and sometimes missing
objects; for the unsupervised task, permuted ids, a missed object and false proposals).

Both tasks are timed with `evaluate_davis` (median of `--repeats`). With `--official DIR` (a checkout of
davisvideochallenge/davis2017-evaluation) its `evaluation_method.py` is timed on the same data in a
subprocess, its CSVs are compared byte for byte with ours, and one more (untimed) run through its Python
API checks every per-object value at full precision. The official code needs scikit-image, which is
not a dependency of this project: pass `--official-python` (or set RVOS_OFFICIAL_PYTHON) to an
interpreter that has it, e.g.

    python3.11 -m venv /tmp/davis-eval-venv
    /tmp/davis-eval-venv/bin/pip install numpy pillow opencv-python-headless scikit-image pandas scipy tqdm
    rvos bench metrics --official /path/to/checkout --official-python /tmp/davis-eval-venv/bin/python
"""

import datetime
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rvos.atomic import write_text_atomic
from rvos.errors import RvosError
from rvos.masks import VOID_ID, write_mask
from rvos.metrics.evaluate import TASKS, evaluate_davis

log = logging.getLogger(__name__)

HEIGHT, WIDTH = 480, 854
N_SEQUENCES = 30
N_FRAMES = 2000
OBJECTS_PATTERN = (1, 2, 3, 2, 2)  # objects per sequence, cycled: 61 in all with one extra below
DATA_VERSION = "rvos-bench-metrics-v1"  # change when the generator changes, to regenerate
SEED = 2017
OFFICIAL_PYTHON_ENV = "RVOS_OFFICIAL_PYTHON"

# Runs the official evaluation through its Python API and dumps per-object values at full precision.
_OFFICIAL_FULL_PRECISION = """
import json, sys
from davis2017.evaluation import DAVISEvaluation
davis, results, task, out = sys.argv[1:5]
res = DAVISEvaluation(davis_root=davis, task=task, gt_set="val").evaluate(results)
dump = {m: {k: [float(v) for v in res[m][k]] for k in ("M", "R", "D")} for m in ("J", "F")}
dump["labels"] = list(res["J"]["M_per_object"])
json.dump(dump, open(out, "w"))
"""


# --------------------------------------------------------------------------------------------------
# Deterministic data set
# --------------------------------------------------------------------------------------------------


def _sequence_lengths() -> list[int]:
    """30 lengths between 34 and 104 frames (DAVIS val's range) summing to N_FRAMES."""
    lengths = [34 + (i * 37) % 71 for i in range(N_SEQUENCES)]
    lengths[-1] += N_FRAMES - sum(lengths)
    return lengths


def _object_counts() -> list[int]:
    counts = [OBJECTS_PATTERN[i % len(OBJECTS_PATTERN)] for i in range(N_SEQUENCES)]
    counts[7] += 1  # 61 objects, like DAVIS-2017 val
    return counts


class _Shape:
    """A star-like polygon moving along a smooth path, rotating and breathing over time."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.center = rng.uniform([120, 80], [WIDTH - 120, HEIGHT - 80])  # (x, y)
        self.velocity = rng.uniform(-3, 3, 2)
        self.wobble = rng.uniform(5, 40, 2)
        self.radius = rng.uniform(30, 110)
        self.harmonics = rng.uniform(-0.25, 0.25, 4)
        self.spin = rng.uniform(-0.03, 0.03)

    def polygon(self, t: int, jitter: tuple[float, float] = (0, 0), scale: float = 1.0) -> np.ndarray:
        """(64, 2) int32 vertices (x, y) at frame t."""
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False) + self.spin * t
        radius = (
            self.radius
            * scale
            * (1 + sum(a * np.cos((k + 2) * angles) for k, a in enumerate(self.harmonics)))
        )
        center = self.center + self.velocity * t + self.wobble * np.sin([0.05 * t, 0.07 * t + 1]) + jitter
        points = center + np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
        return np.round(points).astype(np.int32)


def _render(polygons: list[tuple[int, np.ndarray | None]]) -> np.ndarray:
    """(H, W) uint8 id map; later polygons occlude earlier ones."""
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    for obj_id, polygon in polygons:
        if polygon is not None:
            cv2.fillPoly(ids, [polygon], obj_id)
    return ids


def _with_void_ring(ids: np.ndarray) -> np.ndarray:
    """Mark a ~5 px ring around the objects as void (255), like DAVIS's uncertain borders."""
    objects = (ids > 0).astype(np.uint8)
    ring = cv2.dilate(objects, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))) > objects
    out = ids.copy()
    out[ring] = VOID_ID
    return out


def _generate_sequence(root: Path, index: int, length: int, n_objects: int, jpeg: bytes) -> None:
    name = f"bench-{index:02d}"
    rng = np.random.default_rng([SEED, index])
    shapes = [_Shape(rng) for _ in range(n_objects)]
    proposals = rng.permutation(n_objects) + 1  # unsupervised: the proposal id of each object
    missed = int(rng.integers(n_objects)) if index % 4 == 3 else -1  # an object the method never finds
    false_shapes = [_Shape(rng) for _ in range(index % 3)]  # proposals that match nothing
    jitter = np.zeros((n_objects, 2))
    for t in range(length):
        frame = f"{t:05d}"
        gt = _render([(k + 1, s.polygon(t)) for k, s in enumerate(shapes)])
        if index % 3 == 0:
            gt = _with_void_ring(gt)
        for folder in ("Annotations", "Annotations_unsupervised"):
            write_mask(root / "DAVIS" / folder / "480p" / name / f"{frame}.png", gt)
        (root / "DAVIS" / "JPEGImages" / "480p" / name / f"{frame}.jpg").write_bytes(jpeg)

        jitter += rng.normal(0, 1.5, jitter.shape)  # a slow random walk: the prediction drifts
        scale = rng.uniform(0.9, 1.1, n_objects)
        present = rng.random(n_objects) > 0.05  # objects are sometimes lost for a frame
        predicted = [s.polygon(t, jitter[k], scale[k]) if present[k] else None for k, s in enumerate(shapes)]
        semi = _render([(k + 1, p) for k, p in enumerate(predicted)])
        write_mask(root / "results" / "semi-supervised" / name / f"{frame}.png", semi)
        found = [(int(proposals[k]), p) for k, p in enumerate(predicted) if k != missed]
        extra = [(n_objects + 1 + i, s.polygon(t, scale=0.5)) for i, s in enumerate(false_shapes)]
        write_mask(root / "results" / "unsupervised" / name / f"{frame}.png", _render(extra + found))


def generate_dataset(root: Path) -> Path:
    """Write the benchmark data set under `root` (skipped when it is already there); returns root."""
    marker = root / "VERSION"
    if marker.is_file() and marker.read_text().strip() == DATA_VERSION:
        log.info("benchmark data already in %s", root)
        return root
    if root.exists():
        shutil.rmtree(root)
    log.info("generating %d sequences, %d frames at %dx%d in %s", N_SEQUENCES, N_FRAMES, WIDTH, HEIGHT, root)
    _, jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))  # never decoded: only listed
    names = []
    for index, (length, n_objects) in enumerate(zip(_sequence_lengths(), _object_counts())):
        for folder in ("JPEGImages/480p", "Annotations/480p", "Annotations_unsupervised/480p"):
            (root / "DAVIS" / folder / f"bench-{index:02d}").mkdir(parents=True, exist_ok=True)
        _generate_sequence(root, index, length, n_objects, jpeg.tobytes())
        names.append(f"bench-{index:02d}")
    image_sets = root / "DAVIS" / "ImageSets" / "2017"
    image_sets.mkdir(parents=True, exist_ok=True)
    (image_sets / "val.txt").write_text("\n".join(names) + "\n")
    marker.write_text(DATA_VERSION + "\n")
    return root


# --------------------------------------------------------------------------------------------------
# Timing and comparison
# --------------------------------------------------------------------------------------------------


def _time_ours(data: Path, out: Path, task: str, repeats: int) -> tuple[list[float], dict]:
    times, report = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        report = evaluate_davis(data / "DAVIS", data / "results" / task, task, "val", out / task, workers=2)
        times.append(time.perf_counter() - start)
    return times, report


def _official_python() -> str:
    return os.environ.get(OFFICIAL_PYTHON_ENV) or sys.executable


def _time_official(official: Path, data: Path, task: str, repeats: int) -> list[float]:
    """Run evaluation_method.py `repeats` times; its CSVs land in the results folder."""
    results = data / "results" / task
    times = []
    for _ in range(repeats):
        for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
            (results / name).unlink(missing_ok=True)  # otherwise it prints the cached numbers
        command = [
            _official_python(),
            "evaluation_method.py",
            "--task",
            task,
            "--davis_path",
            str(data / "DAVIS"),
            "--results_path",
            str(results),
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=official, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        # The official script exits 0 even when it refuses the data: check that it wrote its CSVs.
        if done.returncode != 0 or not (results / "global_results-val.csv").is_file():
            raise RvosError(
                f"official evaluation_method.py failed on {task}: {done.stdout[-500:]}{done.stderr[-500:]}"
            )
    return times


def _same_csvs(data: Path, out: Path, task: str) -> bool:
    names = ("global_results-val.csv", "per-sequence_results-val.csv")
    return all((data / "results" / task / n).read_bytes() == (out / task / n).read_bytes() for n in names)


def _full_precision_difference(official: Path, data: Path, task: str, report: dict, scratch: Path) -> float:
    """Largest |ours - official| over every per-object Mean, Recall and Decay (inf if the labels differ)."""
    dump = scratch / f"official-{task}.json"
    command = [
        _official_python(),
        "-c",
        _OFFICIAL_FULL_PRECISION,
        str(data / "DAVIS"),
        str(data / "results" / task),
    ]
    subprocess.run([*command, task, str(dump)], cwd=official, check=True, capture_output=True)
    theirs = json.loads(dump.read_text())
    if theirs["labels"] != list(report["per_object"]):
        return float("inf")
    worst = 0.0
    for metric in ("J", "F"):
        for key, name in (("M", "Mean"), ("R", "Recall"), ("D", "Decay")):
            ours = [values[f"{metric}-{name}"] for values in report["per_object"].values()]
            worst = max(worst, float(np.max(np.abs(np.subtract(ours, theirs[metric][key])))))
    return worst


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _official_versions() -> str | None:
    """Package versions of the interpreter that runs the official code."""
    code = "import numpy, cv2, skimage, scipy, pandas; print(numpy.__version__, cv2.__version__, "
    code += "skimage.__version__, scipy.__version__, pandas.__version__)"
    done = subprocess.run([_official_python(), "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return "numpy {} opencv {} scikit-image {} scipy {} pandas {}".format(*done.stdout.split())


def _environment(official: Path | None) -> dict:
    import PIL
    import scipy

    environment = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "scipy": scipy.__version__,
        "pillow": PIL.__version__,
    }
    if official is not None:
        done = subprocess.run(
            ["git", "-C", str(official), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        environment["official_commit"] = done.stdout.strip() or None
        environment["official_python"] = _official_python()
        environment["official_packages"] = _official_versions()
    return environment


def _table(rows: list[dict]) -> str:
    lines = [
        "| task | ours, median s | official, median s | speed-up | numbers |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        official = f"{row['official_median_s']:.2f}" if row.get("official_median_s") else "-"
        ratio = f"{row['speedup']:.1f}x" if row.get("speedup") else "-"
        lines.append(
            f"| {row['task']} | {row['ours_median_s']:.2f} | {official} | {ratio} | {row['numbers']} |"
        )
    return "\n".join(lines)


def bench_metrics(official: Path | None, official_python: str | None, workdir: Path, repeats: int) -> str:
    """Time both tasks (and the official code with `official`); -> the table. Details go to
    `workdir/bench-metrics.json`; numbers that differ from the official ones are an error."""
    if official_python:
        os.environ[OFFICIAL_PYTHON_ENV] = official_python
    official = official.resolve() if official else None
    if official is not None and not (official / "evaluation_method.py").is_file():
        raise RvosError(f"{official}: not a davis2017-evaluation checkout (no evaluation_method.py)")
    if repeats < 1:
        raise RvosError(f"--repeats must be at least 1, got {repeats}")
    data = generate_dataset(workdir.resolve() / "data")
    out = workdir.resolve() / "ours"
    rows = []
    for task in TASKS:
        ours_times, report = _time_ours(data, out, task, repeats)
        row = {"task": task, "ours_s": ours_times, "ours_median_s": statistics.median(ours_times)}
        row["numbers"] = "not compared"
        row["J&F-Mean"] = report["global"]["J&F-Mean"]
        if official is not None:
            log.info("official evaluation_method.py, %s, %d run(s)...", task, repeats)
            official_times = _time_official(official, data, task, repeats)
            row["official_s"] = official_times
            row["official_median_s"] = statistics.median(official_times)
            row["speedup"] = row["official_median_s"] / row["ours_median_s"]
            row["csv_identical"] = _same_csvs(data, out, task)
            row["max_abs_diff"] = _full_precision_difference(official, data, task, report, workdir.resolve())
            identical = row["csv_identical"] and row["max_abs_diff"] <= 1e-9
            row["numbers"] = (
                f"identical (CSV bytes; max |diff| {row['max_abs_diff']:.1e})" if identical else "DIFFERENT"
            )
        rows.append(row)
    summary = {
        "data": {"sequences": N_SEQUENCES, "frames": N_FRAMES, "size": f"{WIDTH}x{HEIGHT}", "objects": 61},
        "environment": _environment(official),
        "repeats": repeats,
        "rows": rows,
    }
    write_text_atomic(workdir / "bench-metrics.json", json.dumps(summary, indent=2) + "\n")
    log.info("details in %s", workdir / "bench-metrics.json")
    if any(row["numbers"] == "DIFFERENT" for row in rows):
        raise RvosError("our numbers differ from the official ones (see bench-metrics.json)")
    return _table(rows)
