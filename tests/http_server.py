"""A small HTTP file server on 127.0.0.1 for download tests: Range requests, dropped connections, logs.

with FileServer() as server:
    server.files["data.zip"] = payload
    server.cut_after["data.zip"] = 1000   # the next response for it stops after 1000 body bytes
    download_file(server.url("data.zip"), dest)
    server.requests                        # [(path, {header: value}), ...]
"""

import hashlib
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.cut_after: dict[str, int] = {}  # one-shot: drop the connection after N body bytes
        self.fail_next: list[int] = []  # statuses answered (once each) before serving normally
        self.ignore_range = False  # behave like a server without Range support (always 200)
        self.send_length = True  # False: no Content-Length, the body ends when the connection closes
        self.content_type = "application/octet-stream"
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name}"

    def etag(self, name: str) -> str:
        return '"' + hashlib.sha256(self.files[name]).hexdigest()[:16] + '"'

    def headers_of(self, name: str) -> list[dict[str, str]]:
        """Request headers of every request for `name`, in order."""
        return [headers for path, headers in self.requests if path == name]

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _make_handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            name = self.path.lstrip("/")
            with server._lock:
                server.requests.append((name, dict(self.headers.items())))
                status = server.fail_next.pop(0) if server.fail_next else 0
                cut = server.cut_after.pop(name, None)
            if status:
                self._reply(status, b"")
                return
            if name not in server.files:
                self._reply(404, b"not found")
                return
            self._serve(name, server.files[name], cut)

        def _serve(self, name: str, data: bytes, cut: int | None) -> None:
            start = self._range_start(name)
            headers = {
                "ETag": server.etag(name),
                "Accept-Ranges": "bytes",
                "Content-Type": server.content_type,
            }
            if start is None:
                status, body = 200, data
            elif start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                self._reply(416, b"", headers)
                return
            else:
                status, body = 206, data[start:]
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._reply(status, body, headers, cut)

        def _range_start(self, name: str) -> int | None:
            match = _RANGE.fullmatch(self.headers.get("Range", ""))
            if not match or server.ignore_range:
                return None
            if_range = self.headers.get("If-Range")
            if if_range and if_range != server.etag(name):
                return None  # the file changed: RFC 9110 says send all of it
            return int(match.group(1))

        def _reply(
            self, status: int, body: bytes, headers: dict | None = None, cut: int | None = None
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if server.send_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut is None:
                self.wfile.write(body)
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            # Abrupt end of the transfer, as when a connection drops mid-download.
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    return Handler
