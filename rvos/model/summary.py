"""`rvos model-summary`: parameter counts per part of the network; the last line is `parameters: N`."""

import logging

from rvos.config import load_config
from rvos.model.rvos import PAPER_SPEC, RVOS, ModelSpec, count_parameters

log = logging.getLogger(__name__)


def spec_for(preset: str, mode: str, params: str) -> ModelSpec:
    if preset == "paper":
        return ModelSpec(**PAPER_SPEC, one_shot=mode == "one_shot")
    return ModelSpec.from_config(load_config(params).model, mode)


def summary_lines(model: RVOS) -> list[str]:
    spec = model.spec
    rows = [
        (f"encoder trunk ({spec.encoder}, no fc)", model.encoder),
        ("skip reductions (3x3 conv + BN)", model.skips),
    ]
    for level, cell in enumerate(model.decoder.cells):
        rows.append(
            (f"ConvLSTM level {level} gates {cell.gates.in_channels}->{cell.gates.out_channels}", cell)
        )
    rows.append(("conv_out", model.decoder.conv_out))
    header = (
        f"RVOS {'one-shot' if spec.one_shot else 'zero-shot'}: {spec.encoder}, hidden {spec.hidden_size}, "
        f"{spec.max_objects} slots, kernel {spec.kernel_size}"
    )
    lines = [header] + [f"  {label:<40}{count_parameters(part):>12,}" for label, part in rows]
    lines.append(f"parameters: {count_parameters(model)}")
    return lines
