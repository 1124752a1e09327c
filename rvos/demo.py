"""`rvos demo`: segment your own videos (files, stream URLs, folders of frames) outside the pipeline.

With `--mask` the objects it annotates are tracked (one-shot); without it the model finds objects
itself (zero-shot). The model's architecture, input size and mode come from the checkpoint, so any
checkpoint of the pipeline or from `rvos import-original` works, and so does an `rvos export` folder
(ONNX, run with onnxruntime). Which inference settings
(thresholds, zero-shot post-processing) apply is decided by `demo_infer_config`.

Streaming: each frame is read, segmented (`rvos.segmenter.Segmenter`, encoding up to 16 frames at
once) and written (its palette PNG, its frame of `overlay.mp4`, its JPEG preview) before later frames
are read, so memory does not grow with the video's length (`rvos bench demo-memory`).

Everything that can be checked before segmenting is checked first, for every input: the output
folders, the checkpoint, each input's first frame and frame count, each annotation in full. An input's
output folder is written to a temporary sibling and renamed into place when the input is done, so it
is complete or absent: a video that turns out to be truncated at its end leaves nothing.
"""

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from rvos.annotations import Annotation, load_annotation
from rvos.atomic import atomic_dir, check_creatable
from rvos.config import InferConfig, load_config
from rvos.data.streams import DEFAULT_FPS, FrameSource, Mp4Writer, is_url, open_input
from rvos.engine import Engine, load_engine
from rvos.errors import RvosError
from rvos.masks import overlay, write_mask
from rvos.segmenter import Segmenter, checkpoint_infer

log = logging.getLogger(__name__)


def demo_infer_config(
    params: Path | None, checkpoint: dict, overrides: dict[str, Any]
) -> tuple[InferConfig, str]:
    """The inference settings of a demo run, and a few words on where they came from.

    Highest first: `overrides` (the command's flags); the `infer` section of `params` when that file
    exists (a run inside the project); the settings the checkpoint carries (`info.infer`); the
    defaults, which equal the shipped params.yaml.
    """
    infer, source = InferConfig(), "defaults"
    stored = checkpoint_infer(checkpoint)
    if stored is not None:
        infer, source = stored, "the checkpoint"
    if params is not None and params.is_file():
        infer, source = load_config(params).infer, str(params)
    given = {key: value for key, value in overrides.items() if value is not None}
    if given:
        try:
            infer = dataclasses.replace(infer, **given)
        except ValueError as err:
            raise RvosError(f"demo flags: {err}") from None
        source += " + flags"
    return infer, source


@dataclasses.dataclass(frozen=True)
class Job:
    source: str  # as given: a path or a URL
    out: Path  # the folder its masks go to


def output_name(source: str) -> str:
    """The sub-folder of an input when there are several: a video's stem, a folder's name."""
    if is_url(source):
        tail = source.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return Path(tail).stem or "stream"
    path = Path(source)
    return path.name if path.is_dir() else path.stem


def check_output_folder(out: Path) -> None:
    check_creatable(out)
    if out.is_dir() and any(out.iterdir()):
        raise RvosError(f"{out}: output folder exists and is not empty")


def plan_jobs(sources: list[str], out: Path) -> list[Job]:
    """One input writes into `out`; several write into one sub-folder of `out` each."""
    if len(sources) == 1:
        check_output_folder(out)
        return [Job(sources[0], out)]
    check_creatable(out)  # it may hold other results already; each input's own sub-folder may not
    jobs, taken = [], {}
    for source in sources:
        name = output_name(source)
        if name in taken:
            raise RvosError(
                f"{source}: {taken[name]} and {source} would both write {out / name} (rename one)"
            )
        taken[name] = source
        check_output_folder(out / name)
        jobs.append(Job(source, out / name))
    return jobs


def mask_for(mask: Path, job: Job, several: bool) -> Path:
    """The annotation of one input: `--mask` itself, or with several inputs its entry for the input."""
    if not several:
        return mask
    name = job.out.name
    for candidate in (mask / f"{name}.png", mask / name):
        if candidate.exists():
            return candidate
    raise RvosError(
        f"{mask}: no annotation for input {job.source} (with several inputs --mask is a folder holding "
        f"{name}.png or a folder {name}/ for each)"
    )


def run_demo(
    sources: list[str],
    out: Path,
    checkpoint_path: Path,
    mask_path: Path | None,
    device_name: str,
    params: Path | None,
    overrides: dict[str, Any],
    overlay_video: bool = False,
    overlay_frames: bool = False,
    fps: float | None = None,
) -> None:
    """Segment each input into one palette PNG per frame (+ overlay.mp4, + <frame>_overlay.jpg)."""
    jobs = plan_jobs(sources, out)
    engine, checkpoint = load_engine(checkpoint_path, device_name)  # a checkpoint or an export folder
    one_shot = engine.spec.one_shot
    if one_shot and mask_path is None:
        raise RvosError(f"{checkpoint_path}: one-shot model: give the first-frame annotation with --mask")
    if not one_shot and mask_path is not None:
        raise RvosError(f"{checkpoint_path}: zero-shot model: it takes no --mask (use a one-shot checkpoint)")
    if fps is not None and not 0 < fps <= 1000:
        raise RvosError(f"--fps {fps}: must be in (0, 1000]")
    infer, settings_source = demo_infer_config(params, checkpoint, overrides)
    inputs = [open_input(job.source) for job in jobs]
    annotations: list[Annotation | None] = [None] * len(jobs)
    if one_shot:
        if len(jobs) > 1 and not mask_path.is_dir():
            raise RvosError(
                f"{mask_path}: with several inputs --mask is a folder with one annotation per input"
            )
        annotations = [
            load_annotation(mask_for(mask_path, job, len(jobs) > 1), source, engine.spec.max_objects)
            for job, source in zip(jobs, inputs)
        ]
    log.info("inference settings from %s: %s", settings_source, dataclasses.asdict(infer))
    for job, source, annotation in zip(jobs, inputs, annotations):
        size = tuple(checkpoint["input_size"])
        segment_input(job, source, annotation, engine, size, infer, overlay_video, overlay_frames, fps)


def segment_input(
    job: Job,
    source: FrameSource,
    annotation: Annotation | None,
    engine: Engine,
    input_size: tuple[int, int],
    infer: InferConfig,
    overlay_video: bool,
    overlay_frames: bool,
    fps: float | None,
) -> None:
    """Stream one input: read a frame, segment it, write its outputs, then the next."""
    segmenter = Segmenter(engine, input_size, infer, slots=annotation.ids[-1] if annotation else None)
    # Frames handed to the segmenter and waiting for their id maps: at most one encoder batch.
    pending: deque[tuple[str, np.ndarray]] = deque()

    def items() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for index, (name, frame) in enumerate(source.frames()):
            pending.append((name, frame))
            yield frame, annotation.at(index) if annotation else None

    objects: set[int] = set()
    frames = 0
    with atomic_dir(job.out) as tmp:
        video = None
        if overlay_video:
            video = Mp4Writer(tmp / "overlay.mp4", source.size, fps or source.fps or DEFAULT_FPS)
        start = time.perf_counter()
        bar = tqdm(total=source.count, desc=job.out.name or "demo", unit="frame", dynamic_ncols=True)
        try:
            for ids in segmenter.run(items()):
                name, frame = pending.popleft()
                write_mask(tmp / f"{name}.png", ids)
                objects.update(np.unique(ids[ids > 0]).tolist())
                if video is not None or overlay_frames:
                    picture = overlay(frame, ids)
                    if video is not None:
                        video.write(picture)
                    if overlay_frames:
                        cv2.imwrite(
                            str(tmp / f"{name}_overlay.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
                        )
                frames += 1
                bar.update()
        finally:
            bar.close()
            if video is not None:
                video.close()
        seconds = time.perf_counter() - start
        if annotation is not None:
            annotation.check_reached(frames, source.source)
    log.info(
        "%d frames, %d objects (%s) at %.1f frames/s -> %s",
        frames,
        len(objects),
        "one-shot" if segmenter.one_shot else "zero-shot",
        frames / max(seconds, 1e-9),
        job.out,
    )
