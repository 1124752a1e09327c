"""Validation on what the test scores: whole `valid` videos, segmented by the inference code and scored
with the project's DAVIS evaluator. Its J&F picks the checkpoint.

Clip validation (5-frame clips that restart from the ground truth) cannot see a one-shot model drift
over a 40-frame video, so it happily selects a model that loses its objects by frame 18. Here:
- each video streams through `rvos.segmenter.Segmenter`, exactly as in the `infer` stage;
- one-shot: each object is given on its first annotated frame and the model's own predictions are
  fed back, scored with the semi-supervised protocol;
- zero-shot: the same online proposals and region splitting as `infer`, scored with the
  unsupervised protocol;
- YouTube-VOS sources (one-shot): objects may enter after the first frame, which the DAVIS protocol
  cannot score (it takes the objects of the first frame), so the metrics stage's local proxy scores
  them, each object from its first appearance on (`rvos.metrics.youtube`).
Everything runs at the LMDB's resolution against the LMDB's masks (the training resolution), which
keeps it cheap enough for every epoch; the test is scored at the videos' own resolution, so the two
numbers rank models alike but are not the same number.
"""

import math
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

from rvos.config import InferConfig
from rvos.data.dataset import LmdbVideos
from rvos.data.layout import write_list
from rvos.masks import write_mask
from rvos.metrics.evaluate import evaluate_davis
from rvos.metrics.report import task_for
from rvos.metrics.youtube import evaluate_youtube
from rvos.model.rvos import RVOS
from rvos.segmenter import Segmenter


@torch.no_grad()
def validate_videos(
    model: RVOS, videos: LmdbVideos, names: list[str], mode: str, infer: InferConfig, layout: str = "davis"
) -> dict:
    """Segment every video of `names` whole and score it -> {"J&F", "J", "F"} of the DAVIS protocol,
    or of the YouTube-VOS proxy for one-shot runs on a 'youtube' `layout` (rvos.data.layout)."""
    size = (videos.height, videos.width)
    with tempfile.TemporaryDirectory(prefix="rvos-video-validation-") as scratch:
        davis, results = Path(scratch) / "DAVIS", Path(scratch) / "results"
        # The unsupervised protocol reads Annotations_unsupervised; here both are the training masks.
        truth_folder = "Annotations" if mode == "one_shot" else "Annotations_unsupervised"
        for name in tqdm(names, desc="validate videos", unit="video", leave=False):
            info = videos.videos[name]
            frames = (videos.frame(name, t) for t in range(len(info.frames)))
            for t, stem in enumerate(info.frames):
                write_mask(davis / truth_folder / "480p" / name / f"{stem}.png", videos.mask(name, t))
            # one-shot: the annotation of each frame where an object starts (the Segmenter starts
            # only the objects it does not track yet), as the infer stage gives them
            given = {t: videos.mask(name, t) for t in info.first_frames} if mode == "one_shot" else {}
            # one-shot: decode slots up to the video's highest id, as the infer stage does
            slots = (
                min(max(info.all_objects, default=1), model.spec.max_objects) if mode == "one_shot" else None
            )
            segmenter = Segmenter(model, size, infer, slots)
            maps = segmenter.run((frame, given.get(t)) for t, frame in enumerate(frames))
            for stem, ids in zip(info.frames, maps, strict=True):
                write_mask(results / name / f"{stem}.png", ids)
        if mode == "one_shot" and layout == "youtube":
            return youtube_scores(videos, names, davis / truth_folder / "480p", results)
        (davis / "ImageSets" / "2017").mkdir(parents=True)
        write_list(davis / "ImageSets" / "2017" / "valid.txt", names)
        report = evaluate_davis(davis, results, task_for(mode), "valid", Path(scratch) / "scores", workers=1)
    scores = report["global"]
    return {"J&F": scores["J&F-Mean"], "J": scores["J-Mean"], "F": scores["F-Mean"]}


def youtube_scores(videos: LmdbVideos, names: list[str], truth: Path, results: Path) -> dict:
    """{"J&F", "J", "F"}: the proxy's J and F averaged over the objects it can score (nan if none)."""
    meta = {"videos": {}}
    for name in names:
        info = videos.videos[name]
        objects = {
            str(obj): {
                "category": "",
                "frames": [s for s, ids in zip(info.frames, info.objects) if obj in ids],
            }
            for obj in info.all_objects
        }
        if objects:  # a video without any object has nothing to score
            meta["videos"][name] = {"objects": objects}
    if not meta["videos"]:
        return dict.fromkeys(("J&F", "J", "F"), math.nan)
    report = evaluate_youtube(truth, meta, set(), results, workers=1)  # no seen category: all 'unseen'
    j, f = report["J_unseen"], report["F_unseen"]
    if j is None or f is None:  # no object has an annotated frame after its first appearance
        return dict.fromkeys(("J&F", "J", "F"), math.nan)
    return {"J&F": (j + f) / 2, "J": j, "F": f}
