"""A real OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1 whose answers the test plants.

The document text decides the reply: ``[score N]`` a strict JSON answer, ``[fenced N]`` JSON in a
Markdown fence, ``[prose N]`` a sentence with the number, ``[garbage]`` no number at all,
``[429]`` a 429 with ``Retry-After: 0.3`` on the first try, ``[500]`` two 500s first, ``[400]``
a 400 with an error body, ``[slow]`` an answer after 0.1 s. Every request is logged with its arrival time and status.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

_DOC = re.compile(r"<<<\n(.*)\n>>>", re.S)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops SYNs under 8+ concurrent clients: 1 s TCP retransmits
    daemon_threads = True


class ChatServer:
    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.log: list[tuple[float, str, int]] = []  # (time, document text, status)
        self.tries: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.srv = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.srv.server_address[1]}/v1"

    def requests_for(self, marker: str) -> list[tuple[float, int]]:
        return [(t, status) for t, doc, status in self.log if marker in doc]

    def reply(self, doc: str, tries: int) -> tuple[int, dict, dict[str, str]]:
        """(status, JSON body, headers) for the ``tries``-th request about ``doc``."""
        if "[429]" in doc and tries == 1:
            return 429, {"error": {"message": "rate limited"}}, {"Retry-After": "0.3"}
        if "[500]" in doc and tries <= 2:
            return 500, {"error": {"message": "overloaded"}}, {}
        if "[400]" in doc:
            return 400, {"error": {"message": "model 'nope' does not exist"}}, {}
        m = re.search(r"\[(score|fenced|prose) (\d)\]", doc)
        if m is None:
            content = "I cannot tell." if "[garbage]" in doc else '{"score": 3, "reason": "default"}'
        elif m.group(1) == "score":
            content = orjson.dumps({"score": int(m.group(2)), "reason": "planted"}).decode()
        elif m.group(1) == "fenced":
            content = f'Sure!\n```json\n{{"score": {m.group(2)}, "reason": "fenced"}}\n```'
        else:
            content = f"I would rate this a {m.group(2)} out of 5."
        body = {"id": "cmpl-1", "object": "chat.completion", "model": "judge-test",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(doc.split()) + 100, "completion_tokens": 7}}
        return 200, body, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                req = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                doc = _DOC.search(req["messages"][-1]["content"])
                text = doc.group(1) if doc else req["messages"][-1]["content"]
                if self.path != "/v1/chat/completions":
                    status, body, headers = 404, {"error": "no such path"}, {}
                elif server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    status, body, headers = 401, {"error": "bad key"}, {}
                else:
                    with server.lock:
                        server.tries[text] += 1
                        n = server.tries[text]
                        server.in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    if "[slow]" in text:
                        time.sleep(0.1)
                    status, body, headers = server.reply(text, n)
                    with server.lock:
                        server.in_flight -= 1
                with server.lock:
                    server.log.append((time.monotonic(), text, status))
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.srv.shutdown()
        self.srv.server_close()
