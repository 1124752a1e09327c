"""`rvos demo`: segment your own videos or folders of frames with any rvos checkpoint."""

import argparse
import os
from pathlib import Path

# flag -> InferConfig field; None (not given) keeps the value from params.yaml / the checkpoint
SETTING_FLAGS = {
    "mask_threshold": "one-shot: a pixel goes to its most probable object above this probability",
    "zero_shot_mask_threshold": "zero-shot: the same for the proposals",
    "min_area_fraction": "zero-shot: drop proposals (and regions) smaller than this share of the frame",
    "max_proposals": "zero-shot: at most this many proposals (1..20)",
}


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="segment your own videos or folders of frames",
        description="Run RVOS on video files, stream URLs or folders of frames, streaming: each frame is "
        "read, segmented and written before the next, so any length fits in memory. With --mask "
        "(annotation) the objects it shows are tracked (one-shot); without it the model finds objects "
        "itself (zero-shot). One input writes into --out; several write one sub-folder of --out each, "
        "named after the input. Inference settings, highest first: the flags below; the infer section "
        "of --params when that file exists (./params.yaml by default, so inside the project the "
        "pipeline's settings apply); the settings stored in the checkpoint, if any; the built-in "
        "defaults (the shipped params.yaml).",
    )
    demo.add_argument(
        "input",
        nargs="+",
        help="video file or stream URL (anything OpenCV reads), or folder of .jpg/.png frames "
        "(natural order: frame_2 before frame_10)",
    )
    demo.add_argument(
        "--mask",
        help="annotation: one PNG for the first frame, or a folder of PNGs named after the frames they "
        "annotate (00000.png, 00020.png, ...: objects start on the first PNG that shows them); palette/"
        "grayscale ids or a 0/255 binary mask. With several inputs: a folder with <name>.png or <name>/ "
        "for each",
    )
    demo.add_argument(
        "--checkpoint",
        default="models/rvos.pt",
        help="model file, or an `rvos export` folder to run with onnxruntime (default: models/rvos.pt)",
    )
    demo.add_argument("--out", required=True, help="output folder: one palette PNG per frame")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    demo.add_argument(
        "--overlay",
        action="store_true",
        help="also write overlay.mp4: the input with each object coloured and outlined",
    )
    demo.add_argument("--overlay-frames", action="store_true", help="also write <frame>_overlay.jpg previews")
    demo.add_argument(
        "--fps", type=float, help="frame rate of overlay.mp4 (default: the video's own; 24 for frames)"
    )
    demo.add_argument(
        "--params",
        default="params.yaml",
        help="params file whose infer section applies if it exists (default: params.yaml)",
    )
    for name, help_text in SETTING_FLAGS.items():
        kind = int if name == "max_proposals" else float
        demo.add_argument(f"--{name.replace('_', '-')}", type=kind, help=help_text)
    demo.add_argument(
        "--split-components",
        action=argparse.BooleanOptionalAction,
        help="zero-shot: one proposal per connected region of a slot (--no-split-components: per slot)",
    )
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    if not args.verbose:
        # FFmpeg's own report on a damaged file would print lines around the one-line error (-v: keep)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from rvos.demo import run_demo

    overrides = {name: getattr(args, name) for name in [*SETTING_FLAGS, "split_components"]}
    run_demo(
        args.input,
        Path(args.out),
        Path(args.checkpoint),
        Path(args.mask) if args.mask else None,
        args.device,
        Path(args.params),
        overrides,
        overlay_video=args.overlay,
        overlay_frames=args.overlay_frames,
        fps=args.fps,
    )
