"""`rvos evaluate`: score any DAVIS-layout results folder with the official protocol."""

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
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
    evaluate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from rvos.metrics.evaluate import evaluate_davis, global_csv

    report = evaluate_davis(
        Path(args.davis_root), Path(args.results), args.task, args.set, Path(args.out), args.workers
    )
    for line in global_csv(report).splitlines():
        log.info("  %s", line)
