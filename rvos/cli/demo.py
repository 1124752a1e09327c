"""`rvos demo`: segment your own video or folder of frames with any rvos checkpoint."""

import argparse
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
        help="segment your own video or folder of frames",
        description="Run RVOS on a video file or a folder of frames. With --mask (first-frame annotation) "
        "objects are tracked (one-shot); without it the model finds objects itself (zero-shot). "
        "Inference settings, highest first: the flags below; the infer section of --params when that "
        "file exists (./params.yaml by default, so inside the project the pipeline's settings apply); "
        "the settings stored in the checkpoint, if any; the built-in defaults (the shipped params.yaml).",
    )
    demo.add_argument("input", help="video file (read with OpenCV) or folder of .jpg/.png frames")
    demo.add_argument("--mask", help="first-frame annotation: palette/grayscale ids, or a 0/255 binary mask")
    demo.add_argument("--checkpoint", default="models/rvos.pt", help="model file (default: models/rvos.pt)")
    demo.add_argument("--out", required=True, help="output folder for one palette PNG per frame")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    demo.add_argument("--overlay", action="store_true", help="also write <frame>_overlay.jpg previews")
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
    from rvos.demo import run_demo

    overrides = {name: getattr(args, name) for name in [*SETTING_FLAGS, "split_components"]}
    run_demo(
        Path(args.input),
        Path(args.out),
        Path(args.checkpoint),
        Path(args.mask) if args.mask else None,
        args.device,
        Path(args.params),
        overrides,
        args.overlay,
    )
