"""`download_file` against a real HTTP server on 127.0.0.1: resume, retries, size and hash checks."""

import hashlib
import logging
import os
import socket
from pathlib import Path

import pytest

from rvos.data import download
from rvos.data.download import download_file
from rvos.errors import RvosError
from tests.http_server import FileServer

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
# Connections are cut at a multiple of the read size: the bytes of a chunk that is cut short are
# lost with the connection, so the .part (and the resume offset) ends at the last whole chunk.
CHUNK = 16 * 1024


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    monkeypatch.setattr(download, "CHUNK_BYTES", CHUNK)  # several chunks per test file


@pytest.fixture
def server():
    with FileServer() as srv:
        srv.files["data.zip"] = PAYLOAD
        yield srv


def leftovers(folder: Path) -> list[str]:
    """What a failed download left behind, apart from its (empty) lock file."""
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


def test_downloads_and_logs_hash_when_not_pinned(server, tmp_path, caplog):
    dest = tmp_path / "data.zip"
    with caplog.at_level(logging.WARNING, logger="rvos.data.download"):
        assert download_file(server.url("data.zip"), dest) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_suffix(".zip.part").exists()
    assert SHA in caplog.text  # so the user can pin it
    assert server.headers_of("data.zip")[0].get("Accept-Encoding") == "identity"


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    server.cut_after["data.zip"] = 6 * CHUNK
    dest = download_file(server.url("data.zip"), tmp_path / "data.zip", len(PAYLOAD), SHA)
    first, second = server.headers_of("data.zip")
    assert "Range" not in first
    assert second["Range"] == f"bytes={6 * CHUNK}-"
    assert second["If-Range"] == server.etag("data.zip")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == SHA


def test_interrupted_run_leaves_part_that_next_run_resumes(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAYS_S", ())  # no retry: the first run gives up
    server.cut_after["data.zip"] = 7 * CHUNK
    dest = tmp_path / "data.zip"
    with pytest.raises(RvosError, match="download failed after 1 attempts.*resume"):
        download_file(server.url("data.zip"), dest, sha256=SHA)
    assert dest.with_suffix(".zip.part").stat().st_size == 7 * CHUNK
    assert not dest.exists()

    download_file(server.url("data.zip"), dest, sha256=SHA)
    assert server.headers_of("data.zip")[-1]["Range"] == f"bytes={7 * CHUNK}-"
    assert len(server.requests) == 2  # nothing downloaded twice
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.cut_after["data.zip"] = 3 * CHUNK
    server.ignore_range = True
    dest = download_file(server.url("data.zip"), tmp_path / "data.zip", sha256=SHA)
    assert server.headers_of("data.zip")[1]["Range"] == f"bytes={3 * CHUNK}-"  # asked, got a 200
    assert dest.read_bytes() == PAYLOAD  # not the first 50 kB twice


def test_part_already_complete_gets_416_and_is_kept(server, tmp_path):
    dest = tmp_path / "data.zip"
    dest.with_suffix(".zip.part").write_bytes(PAYLOAD)
    download._write_sidecar(dest, server.url("data.zip"), server.etag("data.zip"))
    download_file(server.url("data.zip"), dest, sha256=SHA)
    assert server.headers_of("data.zip")[0]["Range"] == f"bytes={len(PAYLOAD)}-"
    assert len(server.requests) == 1
    assert dest.read_bytes() == PAYLOAD


def test_part_longer_than_file_is_restarted(server, tmp_path):
    dest = tmp_path / "data.zip"
    dest.with_suffix(".zip.part").write_bytes(PAYLOAD + b"garbage")
    download._write_sidecar(dest, server.url("data.zip"), server.etag("data.zip"))
    download_file(server.url("data.zip"), dest, sha256=SHA)
    assert "Range" in server.headers_of("data.zip")[0]  # 416
    assert "Range" not in server.headers_of("data.zip")[1]  # fresh start
    assert dest.read_bytes() == PAYLOAD


def test_file_changed_on_server_restarts_instead_of_mixing(server, tmp_path):
    dest = tmp_path / "data.zip"
    old = os.urandom(len(PAYLOAD))
    dest.with_suffix(".zip.part").write_bytes(old[:1000])
    download._write_sidecar(dest, server.url("data.zip"), '"old-version"')
    download_file(server.url("data.zip"), dest, sha256=SHA)
    assert server.headers_of("data.zip")[0]["If-Range"] == '"old-version"'
    assert dest.read_bytes() == PAYLOAD


def test_part_from_another_url_is_discarded(server, tmp_path):
    dest = tmp_path / "data.zip"
    dest.with_suffix(".zip.part").write_bytes(PAYLOAD[:1000])
    download._write_sidecar(dest, "http://elsewhere.invalid/data.zip", "")
    download_file(server.url("data.zip"), dest, sha256=SHA)
    assert "Range" not in server.headers_of("data.zip")[0]
    assert dest.read_bytes() == PAYLOAD


def test_sha256_mismatch_is_an_error_and_deletes_the_file(server, tmp_path):
    dest = tmp_path / "data.zip"
    wrong = "0" * 64
    with pytest.raises(RvosError) as err:
        download_file(server.url("data.zip"), dest, sha256=wrong)
    message = str(err.value)
    assert server.url("data.zip") in message and wrong in message and SHA in message
    assert "\n" not in message
    assert not dest.exists() and leftovers(tmp_path) == []


def test_announced_size_mismatch_is_an_error(server, tmp_path):
    dest = tmp_path / "data.zip"
    with pytest.raises(RvosError, match=f"server reports {len(PAYLOAD)} bytes, expected 1234"):
        download_file(server.url("data.zip"), dest, expected_size=1234)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_size_mismatch_found_after_download_deletes_the_file(server, tmp_path):
    server.send_length = False  # the server cannot announce the size: it is checked afterwards
    dest = tmp_path / "data.zip"
    with pytest.raises(RvosError, match=f"downloaded {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"):
        download_file(server.url("data.zip"), dest, expected_size=len(PAYLOAD) + 1)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_finished_download_is_reused_without_a_request(server, tmp_path):
    dest = tmp_path / "data.zip"
    download_file(server.url("data.zip"), dest, sha256=SHA)
    download_file(server.url("data.zip"), dest, sha256=SHA)
    download_file(server.url("data.zip"), dest)  # unpinned: same URL is enough
    assert len(server.requests) == 1


def test_cached_file_with_wrong_hash_is_downloaded_again(server, tmp_path):
    dest = tmp_path / "data.zip"
    dest.write_bytes(b"stale content")
    download_file(server.url("data.zip"), dest, sha256=SHA)
    assert len(server.requests) == 1
    assert dest.read_bytes() == PAYLOAD


def test_transient_http_errors_are_retried(server, tmp_path):
    server.fail_next = [503, 502]
    dest = download_file(server.url("data.zip"), tmp_path / "data.zip", sha256=SHA)
    assert len(server.requests) == 3
    assert dest.read_bytes() == PAYLOAD


def test_missing_file_is_an_error_without_retries(server, tmp_path):
    with pytest.raises(RvosError, match="nothing.zip: server answered HTTP 404"):
        download_file(server.url("nothing.zip"), tmp_path / "nothing.zip")
    assert len(server.requests) == 1


def test_unreachable_server_gives_up_after_retries(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.zip"
    with pytest.raises(RvosError, match=r"data.zip: download failed after 4 attempts \(cannot connect"):
        download_file(url, tmp_path / "data.zip")


def test_html_page_instead_of_the_file_is_an_error(server, tmp_path):
    server.content_type = "text/html; charset=utf-8"
    with pytest.raises(RvosError, match="data.zip: server sent an HTML page instead of the file"):
        download_file(server.url("data.zip"), tmp_path / "data.zip")
    assert not (tmp_path / "data.zip").exists()


@pytest.mark.parametrize(
    "size,sha,message",
    [(0, "abc", "'abc' is not 64 hexadecimal digits"), (-1, "", "expected size -1 is negative")],
)
def test_malformed_expected_values_fail_before_downloading(server, tmp_path, size, sha, message):
    with pytest.raises(RvosError, match=message):
        download_file(server.url("data.zip"), tmp_path / "data.zip", size, sha)
    assert server.requests == []
