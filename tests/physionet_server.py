"""A loopback HTTP server laid out like PhysioNet (`/files/mitdb/1.0.0/<file>`, or another prefix), for download tests.

It serves files from a folder with HEAD, GET and single byte ranges (what wfdb uses), logs every
request, and can misbehave on purpose: alter a file's bytes, or drop the connection part way.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

PREFIX = "/files/mitdb/1.0.0/"


class PhysioNetServer:
    def __init__(self, root: Path, prefix: str = PREFIX) -> None:
        self.root, self.prefix = root, prefix
        self.log: list[tuple[str, str, str | None]] = []  # (method, file, Range header)
        self.alter: dict[str, Callable[[bytes], bytes]] = {}  # file -> change to its bytes
        self.cut_after: dict[str, int] = {}  # file -> bytes sent before the connection drops (once)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def index_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/files/"

    def requests(self, method: str = "GET") -> list[str]:
        return [f for m, f, _ in self.log if m == method]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _body(self) -> tuple[str, bytes] | None:
                if not self.path.startswith(server.prefix):
                    return None
                name = self.path[len(server.prefix):]
                path = server.root / name
                if "/" in name or not path.is_file():
                    return None
                data = path.read_bytes()
                return name, server.alter.get(name, lambda b: b)(data)

            def _respond(self, head_only: bool) -> None:
                found = self._body()
                rng = self.headers.get("Range")
                server.log.append(("HEAD" if head_only else "GET", found[0] if found else self.path, rng))
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                name, data = found
                start, end = 0, len(data) - 1
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
                if match:
                    start = int(match[1])
                    end = int(match[2]) if match[2] else end
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(end - start + 1))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head_only:
                    return
                body = data[start:end + 1]
                cut = server.cut_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._respond(head_only=True)

            def do_GET(self) -> None:
                self._respond(head_only=False)

        return Handler
