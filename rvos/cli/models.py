"""`rvos import-original`, `rvos export` and `rvos model-summary`: tools for checkpoints and architectures."""

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
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
    convert.set_defaults(handler=run_import)

    export = commands.add_parser(
        "export",
        help="write ONNX graphs of a checkpoint (run them with rvos demo --checkpoint DIR)",
        description="Export a checkpoint to a folder: encoder.onnx (frames -> skip features), "
        "decoder.onnx (one frame's decoder step, all slots, the ConvLSTM temporal state as inputs and "
        "outputs) and rvos-onnx.json (architecture, input size, mode). Needs the onnx extra: "
        "pip install -e '.[onnx]'.",
    )
    export.add_argument("checkpoint", help="rvos checkpoint (.pt)")
    export.add_argument("--out", required=True, help="output folder (replaced as a whole)")
    export.set_defaults(handler=run_export)

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
    summary.set_defaults(handler=run_summary)


def run_import(args: argparse.Namespace) -> None:
    from rvos.model.import_original import import_original

    import_original(
        Path(args.encoder), Path(args.decoder), Path(args.out), (args.height, args.width), args.max_objects
    )


def run_export(args: argparse.Namespace) -> None:
    from rvos.onnx_export import export_onnx

    export_onnx(Path(args.checkpoint), Path(args.out))


def run_summary(args: argparse.Namespace) -> None:
    from rvos.config import load_config
    from rvos.model.rvos import RVOS
    from rvos.model.summary import spec_for, summary_lines

    mode = args.mode or load_config(args.params).mode
    model = RVOS(spec_for(args.preset, mode, args.params))
    print("\n".join(summary_lines(model)))  # the command's output is the table itself
