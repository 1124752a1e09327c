"""`rvos demo` on a folder of frames and on a video file, with random-weight checkpoints."""

import cv2
import numpy as np
import pytest
import torch

from rvos.cli import main
from rvos.masks import read_mask, write_mask
from rvos.model.checkpoint import save_model
from rvos.model.rvos import RVOS, ModelSpec

H, W = 40, 64


def checkpoint(path, one_shot: bool):
    torch.manual_seed(0)
    save_model(
        path,
        RVOS(ModelSpec("resnet18", 16, 3, 3, one_shot)),
        (32, 48),
        "one_shot" if one_shot else "zero_shot",
    )
    return path


def frames_folder(folder, count: int = 4):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for t in range(count):
        cv2.imwrite(str(folder / f"frame_{t:03d}.jpg"), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return folder


def first_mask(path, binary: bool = False):
    mask = np.zeros((H, W), np.uint8)
    mask[5:20, 5:30] = 255 if binary else 1
    if not binary:
        mask[22:35, 35:60] = 2
    write_mask(path, mask)
    return path


def test_one_shot_on_a_folder_of_frames(tmp_path):
    model = checkpoint(tmp_path / "one.pt", one_shot=True)
    frames = frames_folder(tmp_path / "frames")
    mask = first_mask(tmp_path / "mask.png")
    out = tmp_path / "out"
    main(
        ["demo", str(frames), "--mask", str(mask), "--checkpoint", str(model), "--out", str(out), "--overlay"]
    )
    pngs = sorted(out.glob("*.png"))
    assert [p.stem for p in pngs] == [f"frame_{t:03d}" for t in range(4)]  # named after the frames
    assert all(read_mask(p).shape == (H, W) for p in pngs)  # the input's resolution
    assert np.array_equal(read_mask(pngs[0]), read_mask(mask))  # frame 0 is the given annotation
    assert set(np.unique(read_mask(pngs[2]))) <= {0, 1, 2}
    assert len(list(out.glob("*_overlay.jpg"))) == 4


def test_video_file_zero_shot_and_binary_masks(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for t in range(5):
        writer.write(np.full((H, W, 3), 40 * t, np.uint8))
    writer.release()
    out = tmp_path / "zero"
    main(
        ["demo", str(video), "--checkpoint", str(checkpoint(tmp_path / "zero.pt", False)), "--out", str(out)]
    )
    assert [p.name for p in sorted(out.iterdir())] == [f"{t:05d}.png" for t in range(5)]
    binary = first_mask(tmp_path / "binary.png", binary=True)
    out = tmp_path / "one"
    main(
        [
            "demo",
            str(video),
            "--mask",
            str(binary),
            "--checkpoint",
            str(checkpoint(tmp_path / "one.pt", True)),
            "--out",
            str(out),
        ]
    )
    assert set(np.unique(read_mask(out / "00000.png"))) == {0, 1}  # 0/255 mask = one object


def test_demo_errors_are_one_line(tmp_path, capsys):
    one = checkpoint(tmp_path / "one.pt", one_shot=True)
    frames = frames_folder(tmp_path / "frames")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    small = tmp_path / "small.png"
    write_mask(small, np.ones((10, 10), np.uint8))
    mask = first_mask(tmp_path / "mask.png")
    cases = [
        (["demo", str(tmp_path / "broken.mp4"), "--mask", str(mask)], "cannot read any frame"),
        (["demo", str(tmp_path / "empty"), "--mask", str(mask)], "no frames"),
        (["demo", str(frames), "--mask", str(small)], "mask is 10x10 but the frames are 40x64"),
        (["demo", str(frames)], "one-shot model: give the first-frame annotation with --mask"),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--checkpoint", str(one), "--out", str(out)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
        assert not out.exists()


def test_inference_settings_precedence(tmp_path):
    """Flags > params.yaml (inside a project) > the checkpoint's stored settings > the defaults."""
    from rvos.config import InferConfig
    from rvos.demo import demo_infer_config
    from rvos.errors import RvosError

    no_flags = {"mask_threshold": None, "split_components": None}
    assert demo_infer_config(None, {}, no_flags) == (InferConfig(), "defaults")
    stored = {"info": {"infer": {"mask_threshold": 0.3, "split_components": False}}}
    infer, source = demo_infer_config(tmp_path / "absent.yaml", stored, no_flags)
    assert (infer.mask_threshold, infer.split_components, source) == (0.3, False, "the checkpoint")
    params = tmp_path / "params.yaml"
    params.write_text("infer:\n  mask_threshold: 0.7\n")
    infer, source = demo_infer_config(params, stored, no_flags)
    assert (infer.mask_threshold, infer.split_components, source) == (0.7, True, str(params))
    infer, source = demo_infer_config(params, stored, {"mask_threshold": 0.9, "split_components": False})
    assert (infer.mask_threshold, infer.split_components) == (0.9, False) and source.endswith("+ flags")
    with pytest.raises(RvosError, match="mask_threshold must be in"):
        demo_infer_config(None, {}, {"mask_threshold": 1.5})


def test_threshold_flag_changes_the_masks(tmp_path):
    model = checkpoint(tmp_path / "one.pt", one_shot=True)
    frames = frames_folder(tmp_path / "frames")
    mask = first_mask(tmp_path / "mask.png")
    labelled = {}
    for threshold in ("0.01", "0.99"):
        out = tmp_path / f"out-{threshold}"
        args = ["demo", str(frames), "--mask", str(mask), "--checkpoint", str(model), "--out", str(out)]
        main([*args, "--params", str(tmp_path / "none.yaml"), "--mask-threshold", threshold])
        labelled[threshold] = sum(int((read_mask(p) > 0).sum()) for p in sorted(out.glob("*.png"))[1:])
    assert labelled["0.01"] > labelled["0.99"]
