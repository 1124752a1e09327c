"""A local PROXY of the YouTube-VOS score: J and F split into seen and unseen categories.

The official YouTube-VOS evaluation runs on a CodaLab server whose scoring code is not public, so
this is not, and must never be reported as, the official score. It follows what the challenge
documents (J and F "following DAVIS", averaged over objects, separately for categories seen in the
training videos and unseen ones; Overall = mean of the four) and fills the gaps with explicit choices:

- ground truth is the dense every-5th-frame annotation of a held-out part of `train`
  (`Annotations/<video>/<frame>.png`, original object ids);
- each object is scored on the annotated frames after its first appearance (the first entry of its
  meta.json `frames`); that first frame is excluded because the one-shot method is given its mask;
  frames where the object has left the ground truth still count (an empty prediction scores 1);
- per object, J and F are means over those frames (DAVIS per-frame J and F, void not used, F tolerance
  ceil(0.008 * image diagonal)); objects with no frame to score are left out;
- J_seen, J_unseen, F_seen, F_unseen are means over objects; Overall is the mean of those defined;
- per video (`per_video_rows`: reports/per_sequence.csv, the gallery's ranking), J and F are means
  over its scored objects; a video without one has no row.

Values are fractions in [0, 1], like the DAVIS reports (leaderboards print percentages).
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rvos.errors import RvosError
from rvos.masks import read_mask
from rvos.metrics.davis import FrameScorer, boundary_radius
from rvos.metrics.evaluate import parallel_map

log = logging.getLogger(__name__)

PROTOCOL = (
    "YouTube-VOS local proxy (NOT the official score: the server's scoring code is not public); "
    "DAVIS J/F per object from its first appearance on, first annotated frame excluded"
)


@dataclass(frozen=True)
class VideoObject:
    obj_id: int
    category: str
    first_frame: str  # frame stem of the object's first appearance


@dataclass(frozen=True)
class VideoJob:
    video: str
    gt_paths: tuple[Path, ...]  # annotated frames, sorted by stem
    objects: tuple[VideoObject, ...]
    results: Path  # folder of <frame>.png predictions


def _video_objects(video: str, entry: Any) -> tuple[VideoObject, ...]:
    """Objects of one meta.json video entry; RvosError naming the video on a malformed entry."""
    objects = entry.get("objects") if isinstance(entry, dict) else None
    if not isinstance(objects, dict) or not objects:
        raise RvosError(f"meta.json: video {video} has no 'objects'")
    parsed = []
    for key, obj in objects.items():
        if not str(key).isdigit() or not 1 <= int(key) <= 254:
            raise RvosError(f"meta.json: video {video} object id {key!r} is not an integer in 1..254")
        frames = obj.get("frames") if isinstance(obj, dict) else None
        category = obj.get("category") if isinstance(obj, dict) else None
        if not frames or not isinstance(category, str):
            raise RvosError(
                f"meta.json: video {video} object {key} needs 'category' and a non-empty 'frames'"
            )
        parsed.append(VideoObject(int(key), category, min(str(frame) for frame in frames)))
    return tuple(sorted(parsed, key=lambda o: o.obj_id))


def score_video(job: VideoJob) -> dict[int, tuple[float, float, int]]:
    """object id -> (mean J, mean F, number of frames scored) for the objects of one video."""
    j_sums = {o.obj_id: 0.0 for o in job.objects}
    f_sums = dict(j_sums)
    counts = {o.obj_id: 0 for o in job.objects}
    for gt_path in job.gt_paths:
        active = [o.obj_id for o in job.objects if gt_path.stem > o.first_frame]
        if not active:  # before every object's first scored frame: nothing to read
            continue
        gt = read_mask(gt_path)
        pred_path = job.results / f"{gt_path.stem}.png"
        pred = read_mask(pred_path)
        if pred.shape != gt.shape:
            raise RvosError(
                f"{pred_path}: mask is {pred.shape[1]}x{pred.shape[0]}, but the ground truth {gt_path} "
                f"is {gt.shape[1]}x{gt.shape[0]}"
            )
        ids = np.array(active)
        j, f = FrameScorer(gt, pred, boundary_radius(*gt.shape), use_void=False).scores(ids, ids)
        for obj_id, j_value, f_value in zip(active, j.tolist(), f.tolist()):
            j_sums[obj_id] += j_value
            f_sums[obj_id] += f_value
            counts[obj_id] += 1
    return {
        obj_id: (j_sums[obj_id] / n, f_sums[obj_id] / n, n) if n else (math.nan, math.nan, 0)
        for obj_id, n in counts.items()
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_youtube(
    annotations_dir: Path, meta: dict, seen_categories: set[str], results_dir: Path, workers: int = 2
) -> dict:
    """Score predictions `results_dir/<video>/<frame>.png` against `annotations_dir/<video>/<frame>.png`.

    `meta` is a meta.json dict of the scored videos ({"videos": {video: {"objects": {"<id>":
    {"category": str, "frames": [...]}}}}}); an object is "seen" when its category is in
    `seen_categories`. Returns J_seen, J_unseen, F_seen, F_unseen, Overall (None where no object
    falls in a group), object counts and per-object values. A PROXY, see the module docstring.
    """
    annotations_dir, results_dir = Path(annotations_dir), Path(results_dir)
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict) or not videos:
        raise RvosError("meta.json: no 'videos' to score")
    jobs = []
    for video, entry in videos.items():
        gt_paths = tuple(sorted((annotations_dir / video).glob("*.png")))
        if not gt_paths:
            raise RvosError(f"{annotations_dir / video}: no ground-truth PNG frames for video {video}")
        if not (results_dir / video).is_dir():
            raise RvosError(f"{results_dir / video}: no results folder for video {video}")
        jobs.append(VideoJob(video, gt_paths, _video_objects(video, entry), results_dir / video))

    scores = parallel_map(score_video, jobs, workers, "youtube-vos proxy", [len(j.gt_paths) for j in jobs])

    per_object: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[float]] = {"J_seen": [], "J_unseen": [], "F_seen": [], "F_unseen": []}
    for job, video_scores in zip(jobs, scores):
        for obj in job.objects:
            j, f, n_frames = video_scores[obj.obj_id]
            seen = obj.category in seen_categories
            label = f"{job.video}/{obj.obj_id}"
            per_object[label] = {"category": obj.category, "seen": seen, "frames": n_frames}
            if n_frames == 0:
                log.warning("%s: no annotated frame after its first appearance; left out", label)
                per_object[label].update(J=None, F=None)
                continue
            per_object[label].update(J=j, F=f)
            suffix = "seen" if seen else "unseen"
            groups[f"J_{suffix}"].append(j)
            groups[f"F_{suffix}"].append(f)

    report: dict[str, Any] = {"protocol": PROTOCOL, "proxy": True}
    report.update({name: _mean(values) for name, values in groups.items()})
    defined = [report[name] for name in groups if report[name] is not None]
    report["Overall"] = float(np.mean(defined)) if defined else None
    report["num_videos"] = len(jobs)
    report["num_objects"] = {"seen": len(groups["J_seen"]), "unseen": len(groups["J_unseen"])}
    report["per_object"] = per_object
    log.info(
        "YouTube-VOS PROXY (not official): Overall %s over %d seen + %d unseen objects",
        "n/a" if report["Overall"] is None else f"{report['Overall']:.4f}",
        report["num_objects"]["seen"],
        report["num_objects"]["unseen"],
    )
    return report


def per_video_rows(per_object: dict[str, dict[str, Any]]) -> list[dict]:
    """Rows like `rvos.metrics.report.per_sequence_rows`, one per video, from the proxy's per-object
    values (labels '<video>/<id>'): mean J and F over the video's scored objects, in name order.
    Objects without a score (J/F None: no annotated frame after their first appearance) are left out,
    and so is a video with none scored: there is nothing to rank it by."""
    videos: dict[str, list[dict]] = {}
    for label, values in per_object.items():
        if values.get("J") is not None and values.get("F") is not None:
            videos.setdefault(label.rsplit("/", 1)[0], []).append(values)
    rows = []
    for video, objects in sorted(videos.items()):
        j = float(np.mean([o["J"] for o in objects]))
        f = float(np.mean([o["F"] for o in objects]))
        rows.append({"sequence": video, "J&F": (j + f) / 2, "J": j, "F": f, "objects": len(objects)})
    return rows
