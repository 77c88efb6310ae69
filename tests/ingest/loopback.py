"""Real HTTP servers on loopback for the web source tests: each answers through a route function
and records every request (time, path, headers, query). Host A is 127.0.0.1, host B 127.0.0.2."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# A route answers (handler, path, query) with (status, headers, body); a body may be an iterator
# of chunks, streamed without Content-Length (the connection closes at the end).
Route = Callable[[BaseHTTPRequestHandler, str, dict[str, str]], tuple[int, dict[str, str], object]]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        url = urlsplit(self.path)
        with srv.lock:
            srv.seen.append((time.monotonic(), url.path, dict(self.headers.items()), url.query))
        status, headers, body = srv.route(self, url.path, {k: v[0] for k, v in parse_qs(url.query).items()})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.end_headers()
        try:
            for chunk in body:
                self.wfile.write(chunk)
                srv.sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server:
    def __init__(self, host: str):
        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.lock, self.httpd.seen, self.httpd.sent = threading.Lock(), [], 0
        self.httpd.route = lambda h, path, q: (404, {}, b"")
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def route(self, fn: Route) -> None:
        self.httpd.route = fn

    def headers_at(self, path: str) -> list[dict[str, str]]:
        """The headers of every request for ``path``, lower-cased names."""
        return [{k.lower(): v for k, v in h.items()} for _, p, h, _ in self.httpd.seen if p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
