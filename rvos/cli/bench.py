"""`rvos bench ...`: the speed benchmarks of docs/benchmarks.md (library: `rvos.bench`)."""

import argparse
from pathlib import Path

from rvos.bench.all import BENCHES  # light: the benchmarks themselves load inside the handlers


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="speed and memory benchmarks (see docs/benchmarks.md)")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    loader = benches.add_parser("loader", help="clips/s reading clips from raw folders vs the LMDB")
    loader.add_argument("--params", default="params.yaml")
    loader.add_argument("--clips", type=int, default=200, help="clips per measurement (default 200)")
    loader.add_argument("--repeats", type=int, default=5, help="measurements per reader (median)")
    loader.set_defaults(handler=run_loader)
    train = benches.add_parser("train", help="training clips/s for the default and the paper preset")
    train.add_argument("--params", default="params.yaml")
    train.add_argument("--steps", type=int, default=5, help="timed steps per preset (median)")
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument(
        "--profile", action="store_true", help="instead: torch.profiler's operator table of one params step"
    )
    train.set_defaults(handler=run_train)
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
    metrics.set_defaults(handler=run_metrics)
    infer = benches.add_parser(
        "infer", help="inference frames/s: PyTorch settings and the ONNX engine side by side"
    )
    infer.add_argument("--frames", type=int, default=20, help="clip length (default 20)")
    infer.add_argument("--height", type=int, default=240)
    infer.add_argument("--width", type=int, default=427)
    infer.add_argument("--objects", type=int, default=3, help="objects given on the first frame")
    infer.add_argument("--repeats", type=int, default=3, help="runs per variant (median)")
    infer.add_argument("--checkpoint", help="weights to use (default: the paper preset, random weights)")
    infer.add_argument("--no-onnx", action="store_true", help="skip the ONNX engine")
    infer.set_defaults(handler=run_infer)
    every = benches.add_parser("all", help="every benchmark in turn, each with its ratio to its anchor")
    every.add_argument("--params", default="params.yaml")
    every.add_argument("--official", help="davis2017-evaluation checkout (the metrics anchor)")
    every.add_argument("--workdir", default=".bench", help="where generated data goes")
    every.add_argument("--only", nargs="+", choices=BENCHES, help="just these benchmarks")
    every.set_defaults(handler=run_all)
    memory = benches.add_parser(
        "demo-memory", help="peak RSS of rvos demo on a short and a long generated video (streaming)"
    )
    memory.add_argument("--params", default="params.yaml", help="model size from here (else the defaults)")
    memory.add_argument(
        "--frames", type=int, nargs="+", default=[60, 600], help="video lengths (default 60 600)"
    )
    memory.add_argument("--height", type=int, default=720)
    memory.add_argument("--width", type=int, default=1280)
    memory.add_argument("--workdir", default=".bench/demo-memory", help="where the generated files go")
    memory.add_argument("--no-overlay", action="store_true", help="without --overlay (e.g. for older code)")
    memory.add_argument("--code", help="run the demo of this checkout instead (python -m rvos.cli there)")
    memory.set_defaults(handler=run_demo_memory)


# The reports are the commands' output (stdout), not log lines.


def run_loader(args: argparse.Namespace) -> None:
    from rvos.bench.loader import bench_loader

    print("\n".join(bench_loader(Path(args.params), args.clips, args.repeats)))


def run_train(args: argparse.Namespace) -> None:
    from rvos.bench.train import bench_train, profile_training_step

    if args.profile:
        print("\n".join(profile_training_step(Path(args.params), args.device)))
        return
    print("\n".join(bench_train(Path(args.params), args.steps, args.device)))


def run_metrics(args: argparse.Namespace) -> None:
    from rvos.bench.metrics import bench_metrics

    official = Path(args.official) if args.official else None
    print(bench_metrics(official, args.official_python, Path(args.workdir), args.repeats))


def run_infer(args: argparse.Namespace) -> None:
    from rvos.bench.infer import bench_infer

    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    size = (args.height, args.width)
    lines = bench_infer(args.frames, size, args.objects, args.repeats, checkpoint, onnx=not args.no_onnx)
    print("\n".join(lines))


def run_all(args: argparse.Namespace) -> None:
    from rvos.bench.all import bench_all

    official = Path(args.official) if args.official else None
    for line in bench_all(Path(args.params), official, Path(args.workdir), args.only):
        print(line, flush=True)


def run_demo_memory(args: argparse.Namespace) -> None:
    from rvos.bench.demo_memory import bench_demo_memory

    code = Path(args.code) if args.code else None
    size = (args.height, args.width)
    workdir = Path(args.workdir)
    print(
        "\n".join(bench_demo_memory(Path(args.params), args.frames, size, workdir, not args.no_overlay, code))
    )
