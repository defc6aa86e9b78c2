"""A small HTTP file server for tests, run in a thread: byte ranges, ETag, Last-Modified, redirects.

It answers ``GET`` with ``Range: bytes=a-b`` / ``bytes=a-`` by ``206`` and ``Content-Range`` as
RFC 9110 §14 says, ``416`` past the end, and ``200`` with the whole file without a Range header
(or always, with ``ranges=False``, as a server without range support does). ``redirects`` maps a
path to a Location to answer with ``302``. Every request is recorded (path, Range header, status).
"""

from __future__ import annotations

import email.utils
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class RangeServer:
    def __init__(self, folder: Path, *, ranges: bool = True, etag: bool = True, host: str = "127.0.0.1"):
        self.folder = Path(folder).resolve()
        self.ranges = ranges
        self.etag = etag
        self.host = host
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, name: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}/{name}"

    def start(self) -> RangeServer:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="range-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def record(self, path: str, range_header: str | None, status: int) -> None:
        with self._lock:
            self.requests.append((path, range_header, status))

    def ranged_gets(self, name: str) -> list[str]:
        """The Range headers of the answered (206) requests for one file."""
        with self._lock:
            return [r for p, r, s in self.requests if p == f"/{name}" and s == 206]

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server_owner: RangeServer
    protocol_version = "HTTP/1.1"  # keep-alive, as real file servers do

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):  # noqa: N802 - the base class's name
        owner = self.server_owner
        path = urlsplit(self.path).path
        range_header = self.headers.get("Range")
        if path in owner.redirects:
            return self._answer(302, path, range_header, headers={"Location": owner.redirects[path]})
        target = (owner.folder / unquote(path.lstrip("/"))).resolve()
        if owner.folder not in target.parents or not target.is_file():
            return self._answer(404, path, range_header, body=b"not found")
        data = target.read_bytes()
        stat = target.stat()
        headers = {"Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
                   "Content-Type": "text/csv", "Accept-Ranges": "bytes" if owner.ranges else "none"}
        if owner.etag:
            headers["ETag"] = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        match = _RANGE.match(range_header or "") if owner.ranges else None
        if match is None:
            return self._answer(200, path, range_header, headers=headers, body=data)
        first = int(match.group(1))
        last = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        if first >= len(data):
            return self._answer(416, path, range_header, headers={"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        return self._answer(206, path, range_header, headers=headers, body=data[first:last + 1])

    def _answer(self, status: int, path: str, range_header: str | None, headers: dict | None = None,
                body: bytes = b"") -> None:
        self.server_owner.record(path, range_header, status)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (e.g. refused a 200)
            pass
