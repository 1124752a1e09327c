"""`rvos import-original`: turn the original authors' released weights into an rvos checkpoint.

The original saves two state dicts (imatge-upc/rvos, src/utils/utils.py `save_checkpoint`):
- encoder.pt (`FeatureExtractor`): `base.<torchvision resnet keys>` (with an unused `base.fc`),
  skip convs `sk5, sk4, sk3, sk2` and their BatchNorms `bn5, bn4, bn3, bn2` (coarsest first);
- decoder.pt (`RSIS` / `RSISMask`): `clstm_list.<level>.Gates.{weight,bias}` and `conv_out`.
Multi-GPU runs prefix every key with `module.`; old RSIS checkpoints may carry `fc_stop`/`fc_class`
heads that RVOS never used. The architecture is read from the tensor shapes; `args.pkl` beside the
weights is a pickle (loading it could run arbitrary code), so it is never opened.
"""

import logging
import re
from pathlib import Path

from rvos.errors import RvosError
from rvos.model.checkpoint import save_model
from rvos.model.rvos import RVOS, ModelSpec
from rvos.model.torch_files import load_torch

log = logging.getLogger(__name__)

# blocks per stage and block type -> torchvision name
_RESNETS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
}
_UNUSED_HEADS = ("fc_stop.", "fc_class.")


def strip_parallel_prefix(state: dict) -> dict:
    return {k.removeprefix("module."): v for k, v in state.items()}


def detect_encoder(encoder: dict, name: str) -> str:
    blocks = []
    for layer in range(1, 5):
        indices = {int(m.group(1)) for k in encoder if (m := re.match(rf"base\.layer{layer}\.(\d+)\.", k))}
        blocks.append(len(indices))
    bottleneck = "base.layer1.0.conv3.weight" in encoder
    found = _RESNETS.get((tuple(blocks), bottleneck))
    if found is None:
        raise RvosError(
            f"{name}: not a ResNet-18/34/50/101 encoder (blocks per stage {blocks}); VGG is not supported"
        )
    return found


def convert_keys(encoder: dict, decoder: dict) -> dict:
    """Original key layout -> this project's `RVOS` state dict keys."""
    state = {}
    for key, value in encoder.items():
        if key.startswith("base.fc."):
            continue  # ImageNet classifier, unused by RVOS
        if key.startswith("base."):
            state["encoder." + key.removeprefix("base.")] = value
        elif m := re.match(r"(sk|bn)([2-5])\.(.+)", key):
            kind, stride_level, rest = m.groups()
            index = 5 - int(stride_level)  # sk5 (stride 32) is our level 0
            state[f"skips.{'convs' if kind == 'sk' else 'norms'}.{index}.{rest}"] = value
        else:
            state["unexpected encoder key " + key] = value
    for key, value in decoder.items():
        if key.startswith(_UNUSED_HEADS):
            continue
        if m := re.match(r"clstm_list\.(\d+)\.Gates\.(weight|bias)$", key):
            state[f"decoder.cells.{m.group(1)}.gates.{m.group(2)}"] = value
        elif key.startswith("conv_out."):
            state["decoder." + key] = value
        else:
            state["unexpected decoder key " + key] = value
    return state


def import_original(
    encoder_path: Path, decoder_path: Path, out: Path, input_size: tuple[int, int], max_objects: int = 10
) -> ModelSpec:
    encoder = strip_parallel_prefix(load_torch(encoder_path, "original encoder state dict"))
    decoder = strip_parallel_prefix(load_torch(decoder_path, "original decoder state dict"))
    for path, state, probe, role in (
        (encoder_path, encoder, "sk5.weight", "encoder"),
        (decoder_path, decoder, "conv_out.weight", "decoder"),
    ):
        if probe not in state:
            raise RvosError(f"{path}: no '{probe}' key: not an original RVOS {role} file")
    hidden = encoder["sk5.weight"].shape[0]
    gates_in = decoder["clstm_list.0.Gates.weight"].shape[1]
    extra = gates_in - 3 * hidden  # level 0 gate input: skip (hidden) + 2 hidden states (+1 mask)
    if extra not in (0, 1):
        raise RvosError(
            f"{decoder_path}: gate input of {gates_in} channels does not fit hidden size {hidden}"
        )
    spec = ModelSpec(
        encoder=detect_encoder(encoder, str(encoder_path)),
        hidden_size=int(hidden),
        kernel_size=int(encoder["sk5.weight"].shape[-1]),
        max_objects=max_objects,
        one_shot=extra == 1,
    )
    state = convert_keys(encoder, decoder)
    unexpected = [k for k in state if k.startswith("unexpected")]
    if unexpected:
        raise RvosError(f"{encoder_path.parent}: {unexpected[0]} (not an original RVOS checkpoint)")
    model = RVOS(spec)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RvosError(
            f"{encoder_path.parent}: weights do not fit the {spec.encoder} RVOS ({str(err)[:200]})"
        ) from None
    mode = "one_shot" if spec.one_shot else "zero_shot"
    info = {"imported_from": f"{encoder_path} + {decoder_path}"}
    save_model(out, model.eval(), input_size, mode, info)
    log.info("converted %s %s RVOS (hidden %d) -> %s", mode, spec.encoder, spec.hidden_size, out)
    return spec
