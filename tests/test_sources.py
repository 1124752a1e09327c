"""The `download` stage end to end: every `data.source`, against a local HTTP server and local files."""

import hashlib
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rvos.config import config_from_dict
from rvos.data import download
from rvos.data.layout import check_davis_layout, check_youtube_layout, find_dataset_root
from rvos.errors import RvosError
from rvos.masks import encode_mask
from rvos.pipeline.download import download_stage
from rvos.pipeline.tracking import StageRun
from tests.factories import error_lines, make_davis, run_stage_command
from tests.http_server import FileServer

ARCHIVE = "DAVIS-2017-trainval-480p.zip"


@pytest.fixture(autouse=True)
def _in_project(tmp_path, monkeypatch):
    """Each test runs in an empty project folder (the stage writes data/raw relative to the cwd)."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setattr(download, "RETRY_DELAYS_S", (0.0, 0.0))


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


# -------------------------------------------------------------------------------------- helpers


def run_stage(data: dict) -> None:
    download_stage(config_from_dict({"data": data}), StageRun())


def fingerprint(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file: equal fingerprints mean byte-identical trees."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip `folder` with its own name as the top-level entry (like the official DAVIS zip)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return archive


def tar_folder(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, folder.name)
    return archive


def tiny_davis(root: Path) -> Path:
    """2 sequences (train-0, val-0) x 3 frames, 48x80 JPEGs and palette PNG masks."""
    return make_davis(root, train=1, val=1, frames=3, size=(48, 80), objects=2)


def serve_davis(server: FileServer, tmp_path: Path, break_it=None) -> tuple[dict, Path]:
    """Serve a DAVIS zip; returns the `data` params pointing at it and the source folder."""
    folder = tiny_davis(tmp_path / "src" / "DAVIS")
    if break_it:
        break_it(folder)
    server.files[ARCHIVE] = zip_folder(folder, tmp_path / ARCHIVE).read_bytes()
    # Unpinned (the defaults pin the real archive): tests that need a pin set this archive's own.
    unpinned = {"url": server.url(ARCHIVE), "sha256": "", "size_bytes": 0}
    return {"source": "davis2017", "davis2017": unpinned}, folder


def make_youtube(root: Path, train=("aaa", "bbb"), valid=("ccc",)) -> Path:
    rng = np.random.default_rng(0)
    for subset, videos in (("train", train), ("valid", valid)):
        meta = {"videos": {}}
        for video in videos:
            frames = [f"{5 * i:05d}" for i in range(3)]
            (root / subset / "JPEGImages" / video).mkdir(parents=True)
            (root / subset / "Annotations" / video).mkdir(parents=True)
            for frame in frames:
                image = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
                (root / subset / "JPEGImages" / video / f"{frame}.jpg").write_bytes(
                    cv2.imencode(".jpg", image)[1].tobytes()
                )
                mask = np.zeros((32, 48), np.uint8)
                mask[4:12, 6:20] = 1
                (root / subset / "Annotations" / video / f"{frame}.png").write_bytes(encode_mask(mask))
            obj = {"frames": frames} if subset == "valid" else {"category": "cat", "frames": frames}
            meta["videos"][video] = {"objects": {"1": obj}}
        (root / subset / "meta.json").write_text(json.dumps(meta))
    return root


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files a failed run must not leave behind."""
    if not folder.exists():
        return []
    return sorted(
        p.name for p in folder.iterdir() if ".tmp-" in p.name or ".extract-" in p.name or p.suffix == ".part"
    )


# ------------------------------------------------------------------------------------- davis2017


def test_davis2017_is_downloaded_extracted_and_checked(server, tmp_path):
    data, folder = serve_davis(server, tmp_path)
    run_stage(data)
    raw = Path("data/raw")
    assert (raw / "JPEGImages/480p/train-0/00000.jpg").is_file()
    assert (raw / "Annotations/480p/val-0/00002.png").is_file()
    assert (raw / "ImageSets/2017/train.txt").read_text() == "train-0\n"
    assert fingerprint(raw) == fingerprint(folder)  # exactly the archive's bytes, DAVIS/ unwrapped
    assert (Path(".rvos/downloads") / ARCHIVE).read_bytes() == server.files[ARCHIVE]
    assert leftovers(Path("data")) == []

    # DVC deletes data/raw before re-running the stage: the cached archive is reused, same bytes.
    shutil.rmtree(raw)
    run_stage(data)
    assert len(server.requests) == 1
    assert fingerprint(raw) == fingerprint(folder)


def test_davis2017_truncated_transfer_is_resumed_on_the_next_run(server, tmp_path, monkeypatch):
    data, folder = serve_davis(server, tmp_path)
    size = len(server.files[ARCHIVE])
    sha = hashlib.sha256(server.files[ARCHIVE]).hexdigest()
    data["davis2017"].update(sha256=sha, size_bytes=size)
    monkeypatch.setattr(download, "CHUNK_BYTES", 1024)
    cut = size // 2 // 1024 * 1024  # whole chunks: a chunk cut short is lost with the connection
    server.cut_after[ARCHIVE] = cut
    monkeypatch.setattr(download, "RETRY_DELAYS_S", ())  # the first run gives up (a dropped connection)
    with pytest.raises(RvosError, match="download failed"):
        run_stage(data)
    assert not Path("data/raw").exists()

    run_stage(data)  # the next `dvc repro`
    assert server.headers_of(ARCHIVE)[-1]["Range"] == f"bytes={cut}-"
    cached = Path(".rvos/downloads") / ARCHIVE
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    assert fingerprint(Path("data/raw")) == fingerprint(folder)


@pytest.mark.parametrize(
    "setting,message",
    [
        ({"sha256": "ab" * 32}, "sha256 is [0-9a-f]{64}, expected " + "ab" * 32),
        ({"size_bytes": 12345}, "bytes, expected 12345"),
    ],
)
def test_davis2017_checksum_or_size_mismatch_leaves_nothing(server, tmp_path, setting, message):
    data, _ = serve_davis(server, tmp_path)
    data["davis2017"].update(setting)
    with pytest.raises(RvosError, match=message) as err:
        run_stage(data)
    assert server.url(ARCHIVE) in str(err.value)
    assert not Path("data/raw").exists()
    assert not (Path(".rvos/downloads") / ARCHIVE).exists()
    assert leftovers(Path(".rvos/downloads")) == [] and leftovers(Path("data")) == []


def test_davis2017_archive_without_a_first_frame_annotation(server, tmp_path):
    data, _ = serve_davis(server, tmp_path, lambda f: (f / "Annotations/480p/val-0/00000.png").unlink())
    with pytest.raises(RvosError) as err:
        run_stage(data)
    message = str(err.value)
    assert f"{ARCHIVE}:DAVIS/Annotations/480p/val-0/00000.png" in message  # where, inside the archive
    assert "first-frame annotation of sequence val-0 is missing" in message
    assert not Path("data/raw").exists() and leftovers(Path("data")) == []


def test_davis2017_malicious_archive_is_refused(server, tmp_path):
    data, folder = serve_davis(server, tmp_path)
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("DAVIS/ImageSets/2017/train.txt", "train-0\n")
        zf.writestr("../../evil.txt", "owned")
    server.files[ARCHIVE] = (tmp_path / "evil.zip").read_bytes()
    with pytest.raises(RvosError, match="refusing member '../../evil.txt'"):
        run_stage(data)
    assert not Path("data/raw").exists() and leftovers(Path("data")) == []
    assert list(tmp_path.rglob("evil.txt")) == []


def test_davis2017_damaged_download_is_not_reused(server, tmp_path):
    data, folder = serve_davis(server, tmp_path)
    good = server.files[ARCHIVE]
    server.files[ARCHIVE] = good[: len(good) // 2]  # e.g. a proxy that cut the file, with a matching length
    with pytest.raises(RvosError, match="archive is corrupt or truncated.*the next run fetches it again"):
        run_stage(data)
    assert not (Path(".rvos/downloads") / ARCHIVE).exists()
    server.files[ARCHIVE] = good
    run_stage(data)
    assert fingerprint(Path("data/raw")) == fingerprint(folder)


@pytest.mark.parametrize(
    "url,message",
    [
        ("", "data.davis2017.url is empty"),
        ("ftp://example.org/DAVIS.zip", "data.davis2017.url = 'ftp://example.org/DAVIS.zip' must be"),
        ("https://example.org/download?id=3", "must be an http\\(s\\) URL of a .zip or .tar archive"),
    ],
)
def test_davis2017_bad_url(url, message):
    with pytest.raises(RvosError, match=message):
        run_stage({"source": "davis2017", "davis2017": {"url": url}})


# ------------------------------------------------------------------------------------ youtubevos


@pytest.mark.parametrize("pack", [zip_folder, tar_folder])
def test_youtubevos_from_an_archive(tmp_path, pack):
    folder = make_youtube(tmp_path / "youtube-vos")
    (folder / "test" / "JPEGImages").mkdir(parents=True)  # present in the release, unused by RVOS
    suffix = ".zip" if pack is zip_folder else ".tar.gz"
    archive = pack(folder, tmp_path / f"yt{suffix}")
    run_stage({"source": "youtubevos", "youtubevos": {"path": str(archive)}})
    raw = Path("data/raw")
    assert sorted(p.name for p in raw.iterdir()) == ["train", "valid"]
    assert fingerprint(raw) == {k: v for k, v in fingerprint(folder).items() if not k.startswith("test/")}


def test_youtubevos_from_a_folder_relative_to_the_project(tmp_path):
    folder = make_youtube(Path("datasets/youtube-vos"))  # inside the project: a relative path works
    (folder / "train.zip").write_bytes(b"not copied")
    run_stage({"source": "youtubevos", "youtubevos": {"path": "datasets/youtube-vos"}})
    raw = Path("data/raw")
    assert sorted(p.name for p in raw.iterdir()) == ["train", "valid"]
    assert fingerprint(raw) == {k: v for k, v in fingerprint(folder).items() if k != "train.zip"}


@pytest.mark.parametrize("packed", [False, True])
def test_youtubevos_without_train_meta_json(tmp_path, packed):
    folder = make_youtube(tmp_path / "yt")
    (folder / "train" / "meta.json").unlink()
    path = zip_folder(folder, tmp_path / "yt.zip") if packed else folder
    with pytest.raises(RvosError, match="train/meta.json: meta.json is missing"):
        run_stage({"source": "youtubevos", "youtubevos": {"path": str(path)}})
    assert not Path("data/raw").exists() and leftovers(Path("data")) == []


@pytest.mark.parametrize(
    "meta,message",
    [
        ("{not json", "cannot parse meta.json"),
        ('{"videos": {}}', "at least one video"),
        ('{"videos": {"aaa": {"objects": {"1": {"frames": ["00000"]}}}}}', "video aaa object 1: 'category'"),
        ('{"videos": {"zzz": {"objects": {}}}}', "zzz: folder of video zzz"),
        ('{"videos": {"../x": {"objects": {}}}}', "'../x' is not a video folder name"),
    ],
)
def test_youtubevos_bad_meta_json(tmp_path, meta, message):
    folder = make_youtube(tmp_path / "yt")
    (folder / "train" / "meta.json").write_text(meta)
    with pytest.raises(RvosError, match=message):
        run_stage({"source": "youtubevos", "youtubevos": {"path": str(folder)}})


def test_youtubevos_folder_with_a_link_outside_is_refused(tmp_path):
    folder = make_youtube(tmp_path / "yt")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", folder / "train" / "JPEGImages" / "aaa" / "00099.jpg")
    with pytest.raises(RvosError, match="00099.jpg: symbolic link points outside the dataset folder"):
        run_stage({"source": "youtubevos", "youtubevos": {"path": str(folder)}})
    assert not Path("data/raw").exists()


def test_youtubevos_folder_with_a_link_inside_is_copied_as_a_file(tmp_path):
    folder = make_youtube(tmp_path / "yt")
    first = folder / "train" / "JPEGImages" / "aaa" / "00000.jpg"
    os.symlink(first, folder / "train" / "JPEGImages" / "aaa" / "00015.jpg")
    run_stage({"source": "youtubevos", "youtubevos": {"path": str(folder)}})
    copied = Path("data/raw/train/JPEGImages/aaa/00015.jpg")
    assert not copied.is_symlink() and copied.read_bytes() == first.read_bytes()


@pytest.mark.parametrize(
    "path,message",
    [
        ("", "params: data.youtubevos.path is empty"),
        ("  ", "params: data.youtubevos.path is empty"),
        ("missing/yt.zip", "missing/yt.zip: not found \\(params: data.youtubevos.path\\)"),
    ],
)
def test_youtubevos_path_not_set_or_missing(path, message):
    with pytest.raises(RvosError, match=message):
        run_stage({"source": "youtubevos", "youtubevos": {"path": path}})


def test_youtubevos_path_that_is_not_an_archive(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RvosError, match="must be a folder or a .zip/.tar archive"):
        run_stage({"source": "youtubevos", "youtubevos": {"path": str(tmp_path / "notes.txt")}})


# ----------------------------------------------------------------------------------------- local


def test_local_folder_is_copied(tmp_path):
    folder = tiny_davis(tmp_path / "mine")
    run_stage({"source": "local", "local": {"path": str(folder)}})
    assert fingerprint(Path("data/raw")) == fingerprint(folder)


def test_local_folder_missing_a_first_frame_annotation(tmp_path):
    folder = tiny_davis(tmp_path / "mine")
    (folder / "Annotations/480p/train-0/00000.png").unlink()
    Path("data/raw").mkdir(parents=True)
    Path("data/raw/previous.txt").write_text("previous run")
    with pytest.raises(RvosError, match="first-frame annotation of sequence train-0 is missing"):
        run_stage({"source": "local", "local": {"path": str(folder)}})
    assert fingerprint(Path("data/raw")) == fingerprint_of_text("previous.txt", "previous run")


def fingerprint_of_text(name: str, text: str) -> dict[str, str]:
    return {name: hashlib.sha256(text.encode()).hexdigest()}


def test_local_folder_that_is_not_davis(tmp_path):
    (tmp_path / "videos" / "clip1").mkdir(parents=True)
    with pytest.raises(RvosError, match="JPEGImages: folder is missing \\(not a DAVIS-2017 layout\\)"):
        run_stage({"source": "local", "local": {"path": str(tmp_path / "videos")}})
    with pytest.raises(RvosError, match="params: data.local.path is empty"):
        run_stage({"source": "local"})


# --------------------------------------------------------------------------------- layout checks


@pytest.mark.parametrize(
    "break_it,message",
    [
        (lambda f: shutil.rmtree(f / "Annotations"), "Annotations/480p: folder is missing"),
        (lambda f: (f / "ImageSets/2017/val.txt").unlink(), "val.txt: sequence list is missing"),
        (lambda f: (f / "ImageSets/2017/train.txt").write_text("\n"), "train.txt: lists no sequences"),
        (lambda f: (f / "ImageSets/2017/train.txt").write_text("../x\n"), "'../x' is not a sequence folder"),
        (
            lambda f: shutil.rmtree(f / "JPEGImages/480p/val-0"),
            "frame folder of val sequence val-0 is missing",
        ),
        (lambda f: shutil.rmtree(f / "Annotations/480p/val-0"), "annotation folder of val sequence val-0"),
        (lambda f: [p.unlink() for p in (f / "JPEGImages/480p/val-0").iterdir()], "val-0 has no frames"),
        (lambda f: remove_frame(f, "train-0", "00001"), "train-0: sequence train-0 has no frame 00001 and"),
        (
            lambda f: os.rename(f / "JPEGImages/480p/val-0/00002.jpg", f / "JPEGImages/480p/val-0/2.jpg"),
            r"val-0: sequence val-0 mixes frame numbers of 1 and 5 digits \(2, 00000\)",
        ),
    ],
)
def test_check_davis_layout_names_the_problem(tmp_path, break_it, message):
    folder = tiny_davis(tmp_path / "DAVIS")
    break_it(folder)
    with pytest.raises(RvosError, match=message) as err:
        check_davis_layout(folder)
    assert "\n" not in str(err.value)


def test_find_dataset_root_unwraps_single_folders_and_skips_junk(tmp_path):
    folder = tiny_davis(tmp_path / "x" / "release" / "DAVIS")
    (tmp_path / "x" / "__MACOSX").mkdir()
    (tmp_path / "x" / "README.txt").write_text("readme")
    assert find_dataset_root(tmp_path / "x", check_davis_layout) == folder
    yt = make_youtube(tmp_path / "y" / "youtube")
    assert find_dataset_root(tmp_path / "y", check_youtube_layout) == yt
    with pytest.raises(RvosError, match="not a YouTube-VOS layout"):
        find_dataset_root(tmp_path / "x", check_youtube_layout)


# ----------------------------------------------------------------------------- other sources


def test_unknown_source_is_refused_by_the_config():
    with pytest.raises(RvosError, match="data.source = 'kinetics' is not one of"):
        config_from_dict({"data": {"source": "kinetics"}})


def test_synthetic_source_writes_the_davis_layout():
    tiny = {"train_videos": 1, "val_videos": 1, "min_frames": 3, "max_frames": 4, "height": 48, "width": 64}
    run_stage({"source": "synthetic", "synthetic": tiny})
    raw = Path("data/raw")
    check_davis_layout(raw)
    assert len((raw / "ImageSets/2017/train.txt").read_text().split()) == 1
    assert len((raw / "ImageSets/2017/val.txt").read_text().split()) == 1
    frames = sorted((raw / "JPEGImages/480p").glob("*/*.jpg"))
    assert 6 <= len(frames) <= 8
    assert cv2.imread(str(frames[0])).shape == (48, 64, 3)


def test_local_archive_that_is_a_decompression_bomb_is_refused_by_the_stage(tmp_path):
    """Through `python -m stages.download`: small `data.archive` limits, a zip of zeros built here."""
    folder = tiny_davis(tmp_path / "src" / "DAVIS")
    (folder / "padding.bin").write_bytes(bytes(3 << 20))  # 3 MiB that compress to a few kB
    archive = zip_folder(folder, tmp_path / "bomb.zip")
    assert archive.stat().st_size < 200_000
    params = {"data": {"source": "local", "local": {"path": str(archive)}, "archive": {"max_member_mb": 2}}}
    Path("params.yaml").write_text(json.dumps(params))  # JSON is YAML
    result = run_stage_command("download", Path.cwd())
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{archive}: refusing member 'DAVIS/padding.bin': 3145728 bytes uncompressed" in lines[0]
    assert "data.archive.max_member_mb = 2" in lines[0]
    assert not Path("data/raw").exists() and not list(Path("data").glob(".raw*"))


def remove_frame(folder: Path, sequence: str, stem: str) -> None:
    (folder / "JPEGImages" / "480p" / sequence / f"{stem}.jpg").unlink()
    (folder / "Annotations" / "480p" / sequence / f"{stem}.png").unlink()


@pytest.mark.parametrize("packed", [False, True])
def test_local_sequence_with_a_gap_in_its_frame_numbers_is_refused(tmp_path, packed):
    """00000, 00001, 00003 (frame and mask 00002 both gone) is not read as a continuous video; the
    error names the user's folder (or the place in their archive), never the copy in data/raw."""
    folder = make_davis(tmp_path / "mine" / "DAVIS", train=1, val=1, frames=4)
    remove_frame(folder, "val-0", "00002")
    path = zip_folder(folder, tmp_path / "mine.zip") if packed else folder
    Path("params.yaml").write_text(json.dumps({"data": {"source": "local", "local": {"path": str(path)}}}))
    result = run_stage_command("download", Path.cwd())
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    where = f"{path}:DAVIS/JPEGImages/480p/val-0" if packed else f"{folder}/JPEGImages/480p/val-0"
    assert f"{where}: sequence val-0 has no frame 00002 and no annotation 00002.png" in lines[0]
    assert "renumber its frames and masks" in lines[0] and "data/raw" not in lines[0]
    assert not Path("data/raw").exists()


def test_frame_names_that_are_not_ascii_numbers_are_left_to_name_order(tmp_path):
    # '²'.isdigit() is true but int('²') fails: the frame-number check must skip such names, not crash
    folder = tiny_davis(tmp_path / "DAVIS")
    frames = folder / "JPEGImages/480p/val-0"
    os.rename(frames / "00002.jpg", frames / "0000².jpg")
    check_davis_layout(folder)  # structural checks pass; the index stage pairs frames and masks
