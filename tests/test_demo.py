"""`rvos demo` on generated video files and folders of frames, with random-weight checkpoints."""

import cv2
import numpy as np
import pytest
import torch

from rvos.cli import main
from rvos.data.streams import list_frames_naturally
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


def moving_frames(count: int, size: tuple[int, int] = (H, W)) -> list[np.ndarray]:
    """RGB frames: a bright square moving right over dark noise."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(count):
        frame = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
        frame[5:20, 5 + t : 30 + t] = (200, 180, 40)
        frames.append(frame)
    return frames


def write_video(path, count: int, size: tuple[int, int] = (H, W), fps: float = 10.0):
    """A video file as OpenCV writes it (MJPG in AVI: every build reads it back frame-exact)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size[1], size[0]))
    for frame in moving_frames(count, size):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def frames_folder(folder, count: int = 4, name: str = "frame_{t:03d}.jpg"):
    folder.mkdir()
    for t, frame in enumerate(moving_frames(count)):
        cv2.imwrite(str(folder / name.format(t=t)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def first_mask(path, binary: bool = False, size: tuple[int, int] = (H, W)):
    mask = np.zeros(size, np.uint8)
    mask[5:20, 5:30] = 255 if binary else 1
    if not binary:
        mask[22:35, 35:60] = 2
    write_mask(path, mask)
    return path


def demo(*args):
    main(["demo", *[str(a) for a in args]])


def read_back(video):
    """(frames, (H, W) of the first, fps) of a video as OpenCV reads it."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return len(frames), frames[0].shape[:2] if frames else None, fps


def test_one_shot_on_a_folder_of_frames(tmp_path, capsys):
    model = checkpoint(tmp_path / "one.pt", one_shot=True)
    frames = frames_folder(tmp_path / "frames")
    mask = first_mask(tmp_path / "mask.png")
    out = tmp_path / "out"
    demo(frames, "--mask", mask, "--checkpoint", model, "--out", out, "--overlay-frames")
    pngs = sorted(out.glob("*.png"))
    assert [p.stem for p in pngs] == [f"frame_{t:03d}" for t in range(4)]  # named after the frames
    assert all(read_mask(p).shape == (H, W) for p in pngs)  # the input's resolution
    assert np.array_equal(read_mask(pngs[0]), read_mask(mask))  # frame 0 is the given annotation
    assert set(np.unique(read_mask(pngs[2]))) <= {0, 1, 2}
    assert len(list(out.glob("*_overlay.jpg"))) == 4
    assert not (out / "overlay.mp4").exists()  # only with --overlay
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "4 frames, 2 objects (one-shot) at " in last and last.endswith(f" frames/s -> {out}"), last


def test_frames_are_ordered_naturally(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in (1, 2, 10, 11, 12, 3):
        (folder / f"frame_{t}.jpg").write_bytes(b"")
    assert [p.stem for p in list_frames_naturally(folder)] == [f"frame_{t}" for t in (1, 2, 3, 10, 11, 12)]


def test_video_file_zero_shot_and_binary_masks(tmp_path):
    video = write_video(tmp_path / "clip.avi", 5)
    out = tmp_path / "zero"
    demo(video, "--checkpoint", checkpoint(tmp_path / "zero.pt", False), "--out", out)
    assert [p.name for p in sorted(out.iterdir())] == [f"{t:05d}.png" for t in range(5)]
    binary = first_mask(tmp_path / "binary.png", binary=True)
    out = tmp_path / "one"
    demo(video, "--mask", binary, "--checkpoint", checkpoint(tmp_path / "one.pt", True), "--out", out)
    assert set(np.unique(read_mask(out / "00000.png"))) == {0, 1}  # 0/255 mask = one object


def test_overlay_video_has_one_frame_per_input_frame(tmp_path):
    video = write_video(tmp_path / "clip.avi", 7, fps=12.5)
    out = tmp_path / "out"
    model = checkpoint(tmp_path / "zero.pt", False)
    demo(video, "--checkpoint", model, "--out", out, "--overlay", "--overlay-frames")
    assert read_back(out / "overlay.mp4") == (7, (H, W), 12.5)  # the input's size and frame rate
    assert len(list(out.glob("*_overlay.jpg"))) == 7 and len(list(out.glob("*.png"))) == 7
    # frames of odd size (a video file cannot even hold them): 4:2:0 video needs even sides, so
    # one row and one column are added rather than cropped
    frames = tmp_path / "odd"
    frames.mkdir()
    for t in range(3):
        cv2.imwrite(str(frames / f"{t:05d}.png"), np.full((41, 63, 3), 60 * t, np.uint8))
    demo(frames, "--checkpoint", model, "--out", tmp_path / "folder", "--overlay", "--fps", "5")
    assert read_back(tmp_path / "folder" / "overlay.mp4") == (3, (42, 64), 5.0)
    assert read_mask(tmp_path / "folder" / "00002.png").shape == (41, 63)


def test_an_object_can_enter_at_a_later_frame(tmp_path):
    video = write_video(tmp_path / "clip.avi", 6)
    masks = tmp_path / "masks"
    masks.mkdir()
    first = np.zeros((H, W), np.uint8)
    first[5:20, 5:30] = 1
    later = first.copy()
    later[25:38, 40:60] = 2  # object 2 is first annotated on frame 3
    write_mask(masks / "00000.png", first)
    write_mask(masks / "00003.png", later)
    out = tmp_path / "out"
    model = checkpoint(tmp_path / "one.pt", True)
    demo(video, "--mask", masks, "--checkpoint", model, "--out", out, "--mask-threshold", "0.01")
    maps = [read_mask(out / f"{t:05d}.png") for t in range(6)]
    assert np.array_equal(maps[0], first)
    assert all(2 not in ids for ids in maps[:3])  # frames before its annotation do not contain it
    assert np.array_equal(maps[3] == 2, later == 2)  # its first frame is the annotation
    assert 1 in maps[3] and 2 in maps[5]


def test_several_inputs_write_one_folder_each(tmp_path):
    write_video(tmp_path / "a.avi", 3)
    write_video(tmp_path / "b.avi", 5)
    frames_folder(tmp_path / "shots", count=4)
    inputs = [tmp_path / "a.avi", tmp_path / "b.avi", tmp_path / "shots"]
    out = tmp_path / "out"
    demo(*inputs, "--checkpoint", checkpoint(tmp_path / "zero.pt", False), "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "shots"]
    assert [len(list((out / name).glob("*.png"))) for name in ("a", "b", "shots")] == [3, 5, 4]
    # one-shot: --mask is a folder with <name>.png or <name>/ for each input
    masks = tmp_path / "masks"
    masks.mkdir()
    first_mask(masks / "a.png")
    first_mask(masks / "b.png")
    (masks / "shots").mkdir()
    first_mask(masks / "shots" / "frame_002.png")
    out = tmp_path / "one"
    demo(*inputs, "--mask", masks, "--checkpoint", checkpoint(tmp_path / "one.pt", True), "--out", out)
    assert np.array_equal(read_mask(out / "b" / "00000.png"), read_mask(masks / "b.png"))
    assert not read_mask(out / "shots" / "frame_001.png").any()  # its object starts on frame_002
    assert np.array_equal(
        read_mask(out / "shots" / "frame_002.png"), read_mask(masks / "shots" / "frame_002.png")
    )


def truncated_video(path, frames: int = 40):
    write_video(path, frames)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still announces every frame
    return path


def soft_mask(path):
    """A binary 0/255 object saved the way image editors do: anti-aliased edges (.png) or as a JPEG."""
    mask = np.zeros((H, W), np.uint8)
    mask[5:30, 10:50] = 255
    if path.suffix == ".png":
        mask = cv2.GaussianBlur(mask, (7, 7), 2)
    cv2.imwrite(str(path), mask)
    return path


def bad_inputs(tmp_path):
    """(args, message) for every error case, with everything they need created in tmp_path."""
    frames = frames_folder(tmp_path / "frames")
    video = write_video(tmp_path / "clip.avi", 5)
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    small = tmp_path / "small.png"
    write_mask(small, np.ones((10, 10), np.uint8))
    mask = first_mask(tmp_path / "mask.png")
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.full((H, W, 3), (0, 0, 128), np.uint8))
    high = tmp_path / "high.png"
    write_mask(high, np.where(read_mask(mask) == 2, 4, read_mask(mask)).astype(np.uint8))
    ambiguous = frames_folder(tmp_path / "ambiguous", count=2, name="frame_{t}.jpg")
    cv2.imwrite(str(ambiguous / "frame_01.jpg"), moving_frames(1)[0])
    twins = frames_folder(tmp_path / "twins", count=2, name="{t:05d}.jpg")
    cv2.imwrite(str(twins / "00000.png"), moving_frames(1)[0])
    no_frame = tmp_path / "no_frame"
    no_frame.mkdir()
    first_mask(no_frame / "frame_000.png")
    first_mask(no_frame / "frame_009.png")
    beyond = tmp_path / "beyond"
    beyond.mkdir()
    first_mask(beyond / "00000.png")
    first_mask(beyond / "00009.png")
    jpeg_only = tmp_path / "jpeg_only"
    jpeg_only.mkdir()
    cv2.imwrite(str(jpeg_only / "00000.jpg"), np.zeros((H, W), np.uint8))
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    write_video(tmp_path / "x" / "clip.avi", 2)
    write_video(tmp_path / "y" / "clip.avi", 2)
    truncated = truncated_video(tmp_path / "truncated.avi")
    resized = frames_folder(tmp_path / "resized", count=3)
    cv2.imwrite(str(resized / "frame_002.jpg"), np.zeros((H + 2, W, 3), np.uint8))
    return {
        "unreadable video": ([tmp_path / "broken.mp4", "--mask", mask], "cannot read any frame"),
        "missing input": ([tmp_path / "missing.mp4", "--mask", mask], "no such video file or folder"),
        "empty folder": ([tmp_path / "empty", "--mask", mask], "no frames"),
        "truncated video": (
            [truncated, "--mask", mask],
            "truncated.avi: the video ended after ... of the 40 frames its container announces",
        ),
        "ambiguous numbers": (
            [ambiguous, "--mask", mask],
            "frames frame_01.jpg and frame_1.jpg have the same",
        ),
        "duplicate stems": ([twins, "--mask", mask], "00000.jpg and 00000.png are both frame 00000"),
        "frame size changes": (
            [resized, "--mask", mask],
            "frame frame_002 is 42x64 but the first frame is 40x64",
        ),
        "mask size": ([frames, "--mask", small], "small.png: mask is 10x10 but the frames are 40x64"),
        "no mask": ([frames], "one-shot model: give the first-frame annotation with --mask"),
        # mask problems are found before the video is read: here the video is truncated too
        "rgb mask": (
            [truncated, "--mask", rgb],
            "rgb.png: mask is RGB, expected an indexed (palette) or grayscale",
        ),
        "anti-aliased mask": (
            [truncated, "--mask", soft_mask(tmp_path / "soft.png")],
            "soft.png: ... looks like a binary mask with",
        ),
        "jpeg mask": ([video, "--mask", soft_mask(tmp_path / "soft.jpg")], "soft.jpg: ... saved as JPEG"),
        "ids above slots": ([video, "--mask", high], "high.png: object id 4 is above the model's 3 slots"),
        "png for no frame": ([frames, "--mask", no_frame], "frame_009.png: no frame named frame_009 in"),
        "png beyond the video": ([video, "--mask", beyond], "00009.png: annotates frame 9 but"),
        "mask folder without png": (
            [video, "--mask", jpeg_only],
            "no annotation PNG in the mask folder (found",
        ),
        "one mask for several inputs": (
            [video, frames, "--mask", mask],
            "with several inputs --mask is a folder",
        ),
        "same output name": ([tmp_path / "x" / "clip.avi", tmp_path / "y" / "clip.avi"], "would both write"),
    }


BAD_INPUTS = [
    "unreadable video", "missing input", "empty folder", "truncated video", "ambiguous numbers",
    "duplicate stems", "frame size changes", "mask size", "no mask", "rgb mask", "anti-aliased mask",
    "jpeg mask", "ids above slots", "png for no frame", "png beyond the video", "mask folder without png",
    "one mask for several inputs", "same output name",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_demo_errors_are_one_line_and_write_nothing(tmp_path, capsys, case):
    one = checkpoint(tmp_path / "one.pt", one_shot=True)
    cases = bad_inputs(tmp_path)
    assert sorted(cases) == sorted(BAD_INPUTS)
    args, message = cases[case]
    out = tmp_path / "out"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        demo(*args, "--checkpoint", one, "--out", out)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(part in errors[0] for part in message.split(" ... ")), errors[0]  # the parts, in the line
    assert not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))  # no temporary folder left behind


def test_demo_output_and_mode_errors(tmp_path, capsys):
    video = write_video(tmp_path / "clip.avi", 3)
    mask = first_mask(tmp_path / "mask.png")
    (tmp_path / "a_file").write_text("keep me")
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.png").write_text("x")
    zero = checkpoint(tmp_path / "zero.pt", one_shot=False)
    cases = [
        (["--mask", mask, "--out", tmp_path / "a_file"], "output path is a file"),
        (["--mask", mask, "--out", tmp_path / "a_file" / "out"], "cannot create the output folder: "),
        (["--mask", mask, "--out", full], "output folder exists and is not empty"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            demo(video, "--checkpoint", checkpoint(tmp_path / "one.pt", True), *args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert (tmp_path / "a_file").read_text() == "keep me" and sorted(full.iterdir()) == [full / "old.png"]
    with pytest.raises(SystemExit):
        demo(video, "--checkpoint", zero, "--mask", mask, "--out", tmp_path / "z")
    assert "zero-shot model: it takes no --mask" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


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
        demo(frames, "--mask", mask, "--checkpoint", model, "--out", out, "--params", tmp_path / "none.yaml",
             "--mask-threshold", threshold)  # fmt: skip
        labelled[threshold] = sum(int((read_mask(p) > 0).sum()) for p in sorted(out.glob("*.png"))[1:])
    assert labelled["0.01"] > labelled["0.99"]


def test_memory_benchmark_runs_one_demo_process_per_length(tmp_path):
    # A smoke run on tiny sizes; the figures themselves are in docs/benchmarks.md (not a timed test).
    from rvos.bench.demo_memory import bench_demo_memory

    params = tmp_path / "params.yaml"
    params.write_text("model:\n  hidden_size: 16\n  max_objects: 2\nindex:\n  height: 32\n  width: 48\n")
    lines = bench_demo_memory(params, [3, 6], (H, W), tmp_path / "work")
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["3", "6"] and rows[0][-1] == "1.00"
    assert all(int(row[1]) > 50 and row[2] == "MiB" for row in rows)  # a real process's peak RSS
    assert read_back(tmp_path / "work" / "out-6" / "overlay.mp4")[0] == 6


def test_overlay_blends_each_object_and_draws_its_outline():
    from rvos.masks import _COLOURS, overlay

    frame = np.full((60, 80, 3), 100, np.uint8)
    ids = np.zeros((60, 80), np.uint8)
    ids[10:40, 10:40] = 1
    ids[20:50, 50:70] = 2
    picture = overlay(frame, ids)
    assert np.array_equal(picture[0, 0], frame[0, 0])  # background untouched
    assert np.array_equal(picture[25, 25], (frame[0, 0] * 0.5 + _COLOURS[1] * 0.5).astype(np.uint8))
    assert np.array_equal(picture[10, 25], _COLOURS[1]) and np.array_equal(picture[35, 50], _COLOURS[2])
    assert np.array_equal(overlay(frame, ids, outline=False)[10, 25], picture[25, 25])
