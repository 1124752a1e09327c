"""ONNX: `rvos export` of a tiny random model runs in onnxruntime with PyTorch fp32's id maps."""

import json

import numpy as np
import pytest
import torch

from rvos import Segmenter
from rvos.cli import main
from rvos.config import InferConfig
from rvos.errors import RvosError
from rvos.model.checkpoint import save_model
from rvos.model.rvos import RVOS, ModelSpec
from rvos.onnx_engine import META, OnnxEngine
from rvos.onnx_export import export_onnx

H, W = 48, 64


def tiny(tmp_path, one_shot: bool, target_similarity: bool = False):
    torch.manual_seed(0)
    model = RVOS(ModelSpec("resnet18", 16, 3, 3, one_shot, target_similarity=target_similarity)).eval()
    path = tmp_path / "tiny.pt"
    save_model(path, model, (H, W), "one_shot" if one_shot else "zero_shot")
    return model, path


def video(count: int) -> np.ndarray:
    # a smooth picture that moves, so that the masks are not noise
    y, x = np.mgrid[0:H, 0:W]
    return np.stack(
        [np.stack([(x + 3 * t) % W * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8) for t in range(count)]
    )


def first_mask() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[5:20, 5:25] = 1
    mask[25:40, 30:60] = 3
    return mask


@pytest.mark.parametrize(("one_shot", "target_similarity"), [(True, False), (True, True), (False, False)])
def test_export_gives_pytorch_id_maps(tmp_path, one_shot, target_similarity):
    model, checkpoint = tiny(tmp_path, one_shot, target_similarity)
    export_onnx(checkpoint, tmp_path / "onnx")
    infer = InferConfig(mask_threshold=0.3, zero_shot_mask_threshold=0.3, min_area_fraction=0.0)
    torch_seg = Segmenter(model, (H, W), infer)
    onnx_seg = Segmenter.from_checkpoint(tmp_path / "onnx", infer=infer)
    assert isinstance(onnx_seg.engine, OnnxEngine)
    items = [(f, first_mask() if t == 0 and one_shot else None) for t, f in enumerate(video(6))]
    expected = list(torch_seg.run(items, batch=4))
    got = list(onnx_seg.run(items, batch=4))
    agree = np.mean([np.mean(a == b) for a, b in zip(expected, got)])
    assert agree >= 0.999
    assert torch.allclose(torch_seg.probs.float(), onnx_seg.probs.float(), atol=2e-3)
    assert any(ids[1:].any() for ids in expected[1:])  # the comparison is not of empty maps
    meta = json.loads((tmp_path / "onnx" / META).read_text())
    assert meta["input_size"] == [H, W] and meta["spec"]["one_shot"] == one_shot
    assert meta["spec"]["target_similarity"] == target_similarity


def test_export_cli_and_demo_run_the_export(tmp_path):
    _, checkpoint = tiny(tmp_path, one_shot=True)
    main(["export", str(checkpoint), "--out", str(tmp_path / "onnx")])
    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2

    for t, frame in enumerate(video(3)):
        cv2.imwrite(str(frames / f"{t:05d}.png"), frame[..., ::-1])
    cv2.imwrite(str(tmp_path / "mask.png"), first_mask())
    out = tmp_path / "out"
    main(
        [
            "demo",
            str(frames),
            "--mask",
            str(tmp_path / "mask.png"),
            "--checkpoint",
            str(tmp_path / "onnx"),
            "--out",
            str(out),
            "--params",
            str(tmp_path / "none.yaml"),
        ]
    )
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]


def test_bad_export_folders_give_one_clear_line(tmp_path):
    _, checkpoint = tiny(tmp_path, one_shot=True)
    export_onnx(checkpoint, tmp_path / "onnx")
    folder = tmp_path / "onnx"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RvosError, match=f"{empty}: not an rvos export"):
        OnnxEngine(empty)
    (folder / "encoder.onnx").write_bytes(b"not a graph")
    with pytest.raises(RvosError, match="encoder.onnx: cannot load"):
        OnnxEngine(folder)
    (folder / "decoder.onnx").unlink()
    with pytest.raises(RvosError, match="decoder.onnx not found"):
        OnnxEngine(folder)
    (folder / META).write_text("{not json")
    with pytest.raises(RvosError, match=f"{META}: cannot read"):
        OnnxEngine(folder)
    (folder / META).write_text(json.dumps({"format": "rvos-onnx", "version": 1}))
    with pytest.raises(RvosError, match=f"{META}: bad or missing entry"):
        OnnxEngine(folder)
