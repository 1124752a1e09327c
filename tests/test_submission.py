import json
import zipfile

import numpy as np
import pytest

from rvos.errors import RvosError
from rvos.masks import write_mask
from rvos.submission import davis_entries, deterministic_zip, youtube_entries


def predictions(root, videos: dict[str, list[str]], size=(6, 8)) -> None:
    for video, frames in videos.items():
        for frame in frames:
            write_mask(root / video / f"{frame}.png", np.full(size, 1, np.uint8))


def test_davis_zip_has_sequences_at_the_root_and_is_deterministic(tmp_path):
    videos = {"b": ["00000", "00001"], "a": ["00000"]}
    predictions(tmp_path / "one", videos)
    data = deterministic_zip(davis_entries(tmp_path / "one", videos))
    names = zipfile.ZipFile(__import__("io").BytesIO(data)).namelist()
    assert names == ["a/00000.png", "b/00000.png", "b/00001.png"]
    predictions(tmp_path / "two", videos)  # same content written again later: same bytes
    assert deterministic_zip(davis_entries(tmp_path / "two", videos)) == data


def test_davis_submission_is_validated_before_writing(tmp_path):
    videos = {"a": ["00000", "00001"]}
    predictions(tmp_path, {"a": ["00000"]})
    with pytest.raises(RvosError, match=r"a/00001\.png: prediction is missing"):
        davis_entries(tmp_path, videos)
    predictions(tmp_path, {"a": ["00001"]}, size=(5, 8))
    with pytest.raises(RvosError, match=r"a/00001\.png: prediction is 5x8, the video is 6x8"):
        davis_entries(tmp_path, videos, sizes={"a": (6, 8)})


def test_youtube_zip_holds_exactly_the_meta_frames(tmp_path):
    meta = {
        "videos": {
            "v1": {
                "objects": {
                    "1": {"category": "cat", "frames": ["00000", "00005"]},
                    "2": {"category": "dog", "frames": ["00005", "00010"]},
                }
            }
        }
    }
    predictions(tmp_path, {"v1": ["00000", "00005", "00010", "00015"]})
    entries = youtube_entries(tmp_path, json.loads(json.dumps(meta)))
    assert [name for name, _ in entries] == [
        "Annotations/v1/00000.png",
        "Annotations/v1/00005.png",
        "Annotations/v1/00010.png",
    ]
