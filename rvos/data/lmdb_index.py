"""The LMDB index: every frame and mask of the used videos, pre-resized, in one file.

The original only cached file listings in LMDB (spec section 4.2); decoding 480p JPEGs and resizing
them again in every epoch dominated its data loading. Here each frame is stored already resized to
the training resolution (JPEG bytes) with its mask (palette PNG bytes), plus one index record per
video. Keys (all UTF-8):

    <video>/frame/<stem>   JPEG of the resized frame
    <video>/mask/<stem>    PNG of the resized id mask (nearest-neighbour)
    <video>/info           JSON: frame stems, original size (H, W), object ids per frame
    ~meta                  JSON: index params and the list of videos

The file is byte-deterministic: keys are inserted in sorted order (`append=True` enforces it), the
map size is explicit, and `lock.mdb` is deleted; readers open it `readonly=True, lock=False` so
reading never modifies the DVC output.
"""

import contextlib
import json
import multiprocessing
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from rvos.config import IndexConfig
from rvos.data.videos import find_video, read_annotated_video, resize_frame, resize_mask
from rvos.errors import RvosError
from rvos.masks import encode_mask

META_KEY = b"~meta"  # '~' sorts after every character allowed in video names
FORMAT_VERSION = 1
_COMMIT_EVERY = 2000


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def check_video_name(name: str) -> None:
    if not name or "/" in name or name.startswith("~") or not name.isprintable():
        raise RvosError(f"video name {name!r} cannot be indexed (empty, '/', leading '~' or unprintable)")


def encode_video(name: str, raw: Path, layout: str, index: IndexConfig) -> list[tuple[bytes, bytes]]:
    """All LMDB records of one video, in sorted key order."""
    video = find_video(raw, layout, name)
    records: dict[bytes, bytes] = {}
    stems, ids_per_frame, size = [], [], None
    for stem, frame, mask, ids in read_annotated_video(video, layout):
        size = size or [int(frame.shape[0]), int(frame.shape[1])]
        frame = resize_frame(frame, index.height, index.width)
        mask = resize_mask(mask, index.height, index.width)
        records[f"{name}/frame/{stem}".encode()] = encode_jpeg(frame, index.jpeg_quality)
        records[f"{name}/mask/{stem}".encode()] = encode_mask(mask)
        stems.append(stem)
        ids_per_frame.append(ids)
    info = {"frames": stems, "size": size, "objects": ids_per_frame}
    records[f"{name}/info".encode()] = json.dumps(info, sort_keys=True).encode()
    return sorted(records.items())


def _in_key_order(names: list[str]) -> list[str]:
    # All keys of a video start with "<name>/"; sorting by that prefix sorts the whole key space.
    return sorted(names, key=lambda n: f"{n}/".encode())


def write_index(raw: Path, layout: str, names: list[str], index: IndexConfig, out: Path, workers: int) -> None:
    """Write `data.mdb` for `names` into the empty folder `out`."""
    for name in names:
        check_video_name(name)
    names = _in_key_order(names)
    env = lmdb.open(str(out), map_size=index.map_size_mb * 2**20, subdir=True, meminit=True, lock=True)
    encode = partial(encode_video, raw=raw, layout=layout, index=index)
    try:
        with _ordered_map(encode, names, workers) as results:
            txn = env.begin(write=True)
            pending = 0
            for records in tqdm(results, total=len(names), desc="index", unit="video"):
                for key, value in records:
                    txn.put(key, value, append=True)
                    pending += 1
                if pending >= _COMMIT_EVERY:
                    txn.commit()
                    txn, pending = env.begin(write=True), 0
            meta = {"version": FORMAT_VERSION, "height": index.height, "width": index.width, "videos": names}
            txn.put(META_KEY, json.dumps(meta, sort_keys=True).encode(), append=True)
            txn.commit()
    except lmdb.MapFullError:
        raise RvosError(f"params: index.map_size_mb = {index.map_size_mb} is too small for the dataset") from None
    finally:
        env.close()
    (out / "lock.mdb").unlink(missing_ok=True)


@contextlib.contextmanager
def _ordered_map(function: Callable, items: list, workers: int) -> Iterator[Iterator]:
    """`map` in input order, over a process pool when workers > 1 (results stream as they finish)."""
    if workers <= 1:
        yield map(function, items)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield pool.imap(function, items)
