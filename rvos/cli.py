"""The `rvos` command: one subcommand per pipeline stage, plus tools that work outside the pipeline.

Heavy modules (torch, mlflow) are imported inside each command so that `rvos --help` is instant.
"""

import argparse
import importlib
import sys

from rvos.logs import setup_logging
from rvos.stage import add_stage_arguments, execute_stage, exit_on_user_error

# stage name -> "module:function" of its body; the same bodies run from stages/<name>.py
STAGES = {
    "download": ("rvos.data.sources:download_stage", "bring the dataset named by data.source into data/raw"),
    "split": ("rvos.data.split:split_stage", "write train / valid / test video lists into data/splits"),
    "index": ("rvos.data.lmdb_index:index_stage", "store resized frames and masks in the LMDB data/lmdb"),
    "train": ("rvos.train:train_stage", "train RVOS; best checkpoint in models/, curves in reports/train"),
    "infer": ("rvos.infer:infer_stage", "segment the test videos into outputs/predictions"),
    "format-submission": (
        "rvos.submission:format_submission_stage",
        "zip the predictions in the official server layout (outputs/submission.zip)",
    ),
    "metrics": ("rvos.metrics.stage:metrics_stage", "score the predictions into reports/metrics.json"),
}


def load_function(spec: str):  # noqa: ANN201 - returns whatever the spec names
    module_name, function_name = spec.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _run_stage_command(args: argparse.Namespace) -> None:
    body = load_function(STAGES[args.command][0])
    execute_stage(args.command.replace("-", "_"), body, args.params, args.verbose)


def _run(args: argparse.Namespace) -> None:
    """Call the handler named "module:function" (imported only now: torch and mlflow are slow)."""
    handler = args.handler
    if isinstance(handler, str):
        handler = load_function(handler)
    handler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvos",
        description="RVOS video object segmentation: pipeline stages and tools.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, (_, help_text) in STAGES.items():
        stage = commands.add_parser(name, help=f"stage: {help_text}", description=f"DVC stage: {help_text}.")
        add_stage_arguments(stage)
        stage.set_defaults(handler=_run_stage_command)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a results folder with the official DAVIS-2017 protocol (J, F, recall, decay)",
        description="Score DAVIS-layout results exactly like the official davis2017-evaluation code, "
        "faster. Writes global_results-<set>.csv, per-sequence_results-<set>.csv and metrics.json.",
    )
    evaluate.add_argument(
        "--davis-root", required=True, help="DAVIS folder (Annotations/480p, ImageSets/...)"
    )
    evaluate.add_argument("--results", required=True, help="folder of <sequence>/<frame>.png id masks")
    evaluate.add_argument("--task", choices=["semi-supervised", "unsupervised"], required=True)
    evaluate.add_argument("--set", default="val", help="image set name in ImageSets/2017 (default: val)")
    evaluate.add_argument("--out", required=True, help="folder for the CSV files and metrics.json")
    evaluate.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    evaluate.set_defaults(handler="rvos.metrics.evaluate:evaluate_command")

    demo = commands.add_parser(
        "demo",
        help="segment your own video or folder of frames",
        description="Run RVOS on a video file or a folder of frames. With --mask (first-frame annotation) "
        "objects are tracked (one-shot); without it the model finds objects itself (zero-shot).",
    )
    demo.add_argument("input", help="video file (read with OpenCV) or folder of .jpg/.png frames")
    demo.add_argument("--mask", help="first-frame annotation: palette/grayscale ids, or a 0/255 binary mask")
    demo.add_argument("--checkpoint", default="models/rvos.pt", help="model file (default: models/rvos.pt)")
    demo.add_argument("--out", required=True, help="output folder for one palette PNG per frame")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    demo.add_argument("--overlay", action="store_true", help="also write <frame>_overlay.jpg previews")
    demo.set_defaults(handler="rvos.demo:demo_command")

    convert = commands.add_parser(
        "import-original",
        help="convert a checkpoint released by the original RVOS authors",
        description="Convert the original project's encoder.pt + decoder.pt into one rvos checkpoint. "
        "The architecture (backbone, hidden size, one-/zero-shot) is read from the weights; "
        "args.pkl is never opened (unpickling runs arbitrary code).",
    )
    convert.add_argument("--encoder", required=True, help="original encoder.pt")
    convert.add_argument("--decoder", required=True, help="original decoder.pt")
    convert.add_argument("--out", required=True, help="where to write the converted checkpoint")
    convert.add_argument(
        "--height",
        type=int,
        default=240,
        help="input height: 240 for DAVIS models, 256 for YouTube-VOS (x448)",
    )
    convert.add_argument("--width", type=int, default=427, help="input width the model expects (427)")
    convert.add_argument("--max-objects", type=int, default=10, help="object slots (the original used 10)")
    convert.set_defaults(handler="rvos.model.import_original:import_command")

    summary = commands.add_parser(
        "model-summary",
        help="print the architecture and parameter counts",
        description="Print per-module parameter counts; the last line is 'parameters: N'.",
    )
    summary.add_argument(
        "--preset",
        choices=["paper", "params"],
        default="params",
        help="paper: ResNet-101, hidden 128, 10 slots; params: the model section of --params",
    )
    summary.add_argument("--mode", choices=["one_shot", "zero_shot"], help="default: the params file's mode")
    summary.add_argument("--params", default="params.yaml")
    summary.set_defaults(handler="rvos.model.summary:summary_command")

    bench = commands.add_parser("bench", help="speed benchmarks (see docs/benchmarks.md)")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    loader = benches.add_parser("loader", help="clips/s reading clips from raw folders vs the LMDB")
    loader.add_argument("--params", default="params.yaml")
    loader.add_argument("--clips", type=int, default=200, help="clips per measurement (default 200)")
    loader.add_argument("--repeats", type=int, default=5, help="measurements per reader (median)")
    loader.set_defaults(handler="rvos.bench:bench_loader_command")
    train = benches.add_parser("train", help="training clips/s for the default and the paper preset")
    train.add_argument("--params", default="params.yaml")
    train.add_argument("--steps", type=int, default=5, help="timed steps per preset (median)")
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.set_defaults(handler="rvos.bench:bench_train_command")
    metrics = benches.add_parser(
        "metrics", help="our evaluation vs the official code on DAVIS-val-sized data"
    )
    metrics.add_argument("--official", help="checkout of davisvideochallenge/davis2017-evaluation")
    metrics.add_argument(
        "--official-python",
        help="interpreter with the official code's needs (scikit-image); default: this one",
    )
    metrics.add_argument("--workdir", default=".bench/metrics", help="where the generated data goes")
    metrics.add_argument("--repeats", type=int, default=3)
    metrics.set_defaults(handler="rvos.metrics.bench:bench_metrics_command")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    with exit_on_user_error():
        _run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
