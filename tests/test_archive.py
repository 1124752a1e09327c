"""`safe_extract`: exact contents for good archives; refusal, and nothing extracted, for bad ones."""

import io
import stat
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from rvos.config import ArchiveConfig
from rvos.data.archive import copy_limited, safe_extract
from rvos.errors import RvosError

FILES = {"DAVIS/a.txt": b"alpha\n", "DAVIS/sub/b.bin": bytes(range(256)) * 40}


def make_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in entries:
                zf.writestr(info, data)
    return path


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    return info, data


def make_tar(path: Path, members: list[tuple], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def good_members() -> list[tuple]:
    return [tar_member(name, data=data) for name, data in FILES.items()]


def extracted_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_nothing_extracted(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}")] == []


# ---------------------------------------------------------------------------------- good archives


def test_zip_contents_are_extracted_exactly(tmp_path):
    archive = make_zip(tmp_path / "a.zip", list(FILES.items()))
    safe_extract(archive, tmp_path / "out")
    assert extracted_files(tmp_path / "out") == FILES


@pytest.mark.parametrize(
    "suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.xz", "w:xz")]
)
def test_tar_contents_are_extracted_exactly(tmp_path, suffix, mode):
    members = [*good_members(), tar_member("DAVIS/link", tarfile.SYMTYPE, link="sub/b.bin")]
    archive = make_tar(tmp_path / f"a{suffix}", members, mode)
    safe_extract(archive, tmp_path / "out")
    assert extracted_files(tmp_path / "out") == {**FILES, "DAVIS/link": FILES["DAVIS/sub/b.bin"]}
    assert (tmp_path / "out" / "DAVIS" / "link").is_symlink()  # a link inside the archive is fine


def test_extracting_replaces_the_destination_as_a_whole(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    safe_extract(make_zip(tmp_path / "a.zip", list(FILES.items())), tmp_path / "out")
    assert extracted_files(tmp_path / "out") == FILES


# ----------------------------------------------------------------------------------- bad archives


def symlink_zip_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@pytest.mark.parametrize(
    "entry,reason",
    [
        (("../evil.txt", b"x"), "'..' in path"),
        (("DAVIS/../../evil.txt", b"x"), "'..' in path"),
        (("/tmp/evil.txt", b"x"), "absolute path"),
        (("C:/evil.txt", b"x"), "absolute path"),
        (("..\\evil.txt", b"x"), "'..' in path"),
        (symlink_zip_entry("DAVIS/passwd", "/etc/passwd"), "symbolic link"),
    ],
)
def test_malicious_zip_is_refused_before_anything_is_written(tmp_path, entry, reason):
    archive = make_zip(tmp_path / "bad.zip", [*FILES.items(), entry])
    name = entry[0] if isinstance(entry[0], str) else entry[0].filename
    with pytest.raises(RvosError) as err:
        safe_extract(archive, tmp_path / "out")
    message = str(err.value)
    assert str(archive) in message and repr(name) in message and reason in message
    assert_nothing_extracted(tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_zip_with_a_name_twice_is_refused(tmp_path):
    archive = make_zip(tmp_path / "dup.zip", [("DAVIS/a.txt", b"one"), ("DAVIS/a.txt", b"two")])
    with pytest.raises(RvosError, match="'DAVIS/a.txt': appears twice"):
        safe_extract(archive, tmp_path / "out")
    assert_nothing_extracted(tmp_path / "out")


@pytest.mark.parametrize(
    "member,reason",
    [
        (tar_member("DAVIS/passwd", tarfile.SYMTYPE, link="/etc/passwd"), "symbolic link to absolute path"),
        (tar_member("DAVIS/up", tarfile.SYMTYPE, link="../.."), "points outside"),
        (tar_member("DAVIS/up", tarfile.SYMTYPE, link="../../etc/passwd"), "points outside"),
        (tar_member("DAVIS/hard", tarfile.LNKTYPE, link="../outside.txt"), "'..' in hard link target"),
        (tar_member("DAVIS/hard", tarfile.LNKTYPE, link="/etc/passwd"), "absolute hard link target"),
        (tar_member("../evil.txt", data=b"x"), "'..' in path"),
        (tar_member("/tmp/evil.txt", data=b"x"), "absolute path"),
        (tar_member("DAVIS/fifo", tarfile.FIFOTYPE), "special file"),
        (tar_member("DAVIS/null", tarfile.CHRTYPE), "special file"),
    ],
)
def test_malicious_tar_is_refused_and_nothing_is_left(tmp_path, member, reason):
    archive = make_tar(tmp_path / "bad.tar.gz", [*good_members(), member])
    with pytest.raises(RvosError) as err:
        safe_extract(archive, tmp_path / "out")
    message = str(err.value)
    assert str(archive) in message and repr(member[0].name) in message and reason in message
    assert_nothing_extracted(tmp_path / "out")


def test_tar_link_that_escapes_through_another_link_is_refused(tmp_path):
    # Each link looks harmless on paper ("here" -> ".", "up" -> "here/.." = "."), but on disk
    # "up" resolves to the parent of the destination; the "data" filter catches the real path.
    members = [
        tar_member("here", tarfile.SYMTYPE, link="."),
        tar_member("up", tarfile.SYMTYPE, link="here/.."),
        tar_member("up/evil.txt", data=b"x"),
    ]
    archive = make_tar(tmp_path / "chain.tar", members, "w")
    with pytest.raises(RvosError, match="refusing member 'up"):
        safe_extract(archive, tmp_path / "out")
    assert_nothing_extracted(tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_failed_extraction_keeps_the_previous_destination(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    archive = make_tar(tmp_path / "bad.tar", [tar_member("../evil", data=b"x")], "w")
    with pytest.raises(RvosError):
        safe_extract(archive, tmp_path / "out")
    assert extracted_files(tmp_path / "out") == {"old.txt": b"old"}


# ------------------------------------------------------------------------------ corrupt archives


def test_truncated_zip_is_refused(tmp_path):
    data = make_zip(tmp_path / "a.zip", list(FILES.items())).read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(RvosError, match="cut.zip: archive is corrupt or truncated"):
        safe_extract(tmp_path / "cut.zip", tmp_path / "out")
    assert_nothing_extracted(tmp_path / "out")


def test_zip_with_damaged_data_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("DAVIS/raw.bin", bytes(5000))])
    with zipfile.ZipFile(archive) as zf:
        offset = zf.getinfo("DAVIS/raw.bin").header_offset + 30 + len("DAVIS/raw.bin") + 2
    data = bytearray(archive.read_bytes())
    data[offset] ^= 0xFF  # flip a byte of the compressed data
    archive.write_bytes(bytes(data))
    with pytest.raises(RvosError, match="a.zip: archive is corrupt or truncated"):
        safe_extract(archive, tmp_path / "out")
    assert_nothing_extracted(tmp_path / "out")


@pytest.mark.parametrize("name,mode", [("cut.tar.gz", "w:gz"), ("cut.tar.bz2", "w:bz2"), ("cut.tar", "w")])
def test_truncated_tar_is_refused(tmp_path, name, mode):
    members = [tar_member(f"DAVIS/{i}.bin", data=bytes([i]) * 3000) for i in range(5)]
    data = make_tar(tmp_path / f"full-{name}", members, mode).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(RvosError, match=f"{name}: archive is (corrupt or )?truncated"):
        safe_extract(tmp_path / name, tmp_path / "out")
    assert_nothing_extracted(tmp_path / "out")


def test_tar_cut_between_two_members_is_refused(tmp_path):
    # Such a file reads like a valid, shorter archive: only the missing end marker gives it away.
    members = [tar_member(f"DAVIS/{i}.bin", data=bytes(512)) for i in range(3)]
    data = make_tar(tmp_path / "full.tar", members, "w").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: 2 * 1024])  # exactly two (header + data) members
    with pytest.raises(RvosError, match="cut.tar: archive is truncated"):
        safe_extract(tmp_path / "cut.tar", tmp_path / "out")
    assert_nothing_extracted(tmp_path / "out")


def test_file_that_is_not_an_archive_is_refused(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"<html>login page</html>")
    with pytest.raises(RvosError, match="fake.zip: archive is corrupt or truncated"):
        safe_extract(tmp_path / "fake.zip", tmp_path / "out")
    (tmp_path / "fake.tar.gz").write_bytes(b"<html>login page</html>")
    with pytest.raises(RvosError, match="fake.tar.gz: archive is corrupt or truncated"):
        safe_extract(tmp_path / "fake.tar.gz", tmp_path / "out")


def test_unsupported_or_missing_archive_is_refused(tmp_path):
    (tmp_path / "data.rar").write_bytes(b"x")
    with pytest.raises(RvosError, match="data.rar: not a supported archive type"):
        safe_extract(tmp_path / "data.rar", tmp_path / "out")
    with pytest.raises(RvosError, match="missing.zip: archive file is missing"):
        safe_extract(tmp_path / "missing.zip", tmp_path / "out")


# ------------------------------------------------------------------------ decompression bombs

MIB = 1 << 20
SMALL = ArchiveConfig(max_total_mb=2, max_member_mb=1)  # what the tests' archives are measured against


def bomb_members(kind: str) -> list[tuple[str, bytes]]:
    # zeros compress about 1000:1, so each archive is a few kB on disk
    if kind == "member":
        return [("DAVIS/a.txt", b"a"), ("DAVIS/big.bin", bytes(MIB + 1))]
    return [(f"DAVIS/{i}.bin", bytes(MIB - 1000)) for i in range(3)]  # each fits, 3 together do not


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "member",
            r"member 'DAVIS/big\.bin': 1048577 bytes uncompressed, above data\.archive\.max_member_mb",
        ),
        ("total", r"extracts to more than data\.archive\.max_total_mb = 2 MiB \(at member 'DAVIS/2\.bin'"),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "tar.gz", "tar.bz2"])
def test_decompression_bomb_is_refused_by_its_declared_sizes(tmp_path, fmt, kind, message):
    entries = bomb_members(kind)
    if fmt == "zip":
        archive = make_zip(tmp_path / "bomb.zip", entries)
    else:
        mode = "w:" + fmt.split(".")[1]
        archive = make_tar(tmp_path / f"bomb.{fmt}", [tar_member(n, data=d) for n, d in entries], mode)
    assert archive.stat().st_size < 50_000
    with pytest.raises(RvosError, match=message) as err:
        safe_extract(archive, tmp_path / "out", SMALL)
    assert str(archive) in str(err.value) and "\n" not in str(err.value)
    assert_nothing_extracted(tmp_path / "out")
    # the same archive is fine under the default limits
    safe_extract(archive, tmp_path / "out")
    assert extracted_files(tmp_path / "out") == dict(entries)


def lie_about_size(archive: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size of `member` in its local header and central directory entry."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        local = zf.getinfo(member).header_offset
    struct.pack_into("<I", data, local + 22, size)
    central = data.rfind(member.encode()) - 46  # the name's last copy follows its directory entry's header
    assert central > local and data[central : central + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, central + 24, size)
    archive.write_bytes(bytes(data))


def test_zip_that_lies_about_its_sizes_is_stopped_at_the_declared_size(tmp_path):
    # 3 MiB of zeros declared as 1000 bytes: the headers pass every limit, the bytes do not.
    archive = make_zip(tmp_path / "liar.zip", [("DAVIS/a.txt", b"a"), ("DAVIS/liar.bin", bytes(3 * MIB))])
    lie_about_size(archive, "DAVIS/liar.bin", 1000)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("DAVIS/liar.bin").file_size == 1000
    # zipfile stops at the declared size (and copy_limited would), then the CRC gives the lie away
    with pytest.raises(
        RvosError, match=r"liar\.zip: archive is corrupt or truncated \(Bad CRC-32 .*liar\.bin"
    ):
        safe_extract(archive, tmp_path / "out", SMALL)
    assert_nothing_extracted(tmp_path / "out")


def test_copy_stops_a_stream_longer_than_its_declared_size(tmp_path):
    out = io.BytesIO()
    with pytest.raises(RvosError, match=r"x\.zip: refusing member 'm': decompresses to more than the 1000 "):
        copy_limited(io.BytesIO(bytes(3 * MIB)), out, 1000, Path("x.zip"), "m")
    assert len(out.getvalue()) <= 1000  # nothing beyond the declared size was written
    out = io.BytesIO()
    copy_limited(io.BytesIO(b"abc"), out, 3, Path("x.zip"), "m")
    assert out.getvalue() == b"abc"
