"""Files in S3 through fsspec, against a moto S3 server on 127.0.0.1; credentials from the environment."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from corpusforge import run

PAGE = "05844573ca7e1fba714d715bb11ca08c26e25328999c74a1cb3bc8a0e4399f0f"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free 127.0.0.1 port while the block runs; yields the environment
    (credentials, region, endpoint) that reaches it through the standard AWS chain."""
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    try:
        yield {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_endpoint(monkeypatch):
    # Credentials and endpoint come from the standard environment chain, never from the recipe.
    with moto_s3() as env:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        import fsspec

        fsspec.filesystem("s3").clear_instance_cache()
        yield env["AWS_ENDPOINT_URL"]


def test_s3_folder_runs_through_the_pipeline_with_etags_in_the_manifest(s3_endpoint, data, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    fs.pipe("corpus/in/notes.txt", b"notes stored in a bucket\n")
    fs.pipe("corpus/in/rows.jsonl", b'{"text": "first row"}\n{"text": "second row"}\n')
    fs.put(str(data / "html" / "scrapinghub" / f"{PAGE}.html"), "corpus/in/page.html")
    out = tmp_path / "out"
    stats = run({"sources": [{"name": "s3", "path": "s3://corpus/in"}], "steps": [],
                 "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32},
                 "output": {"documents": "jsonl"}}, output=str(out), workers=1)
    assert stats["documents"]["read"] == 4 and stats["quarantine"] == {}
    docs = [orjson.loads(x) for p in (out / "documents").glob("*.jsonl") for x in p.read_bytes().splitlines()]
    assert {d["source"] for d in docs} == {"s3://corpus/in/notes.txt", "s3://corpus/in/rows.jsonl",
                                           "s3://corpus/in/page.html"}
    manifest = [orjson.loads(x) for x in (out / "manifest.jsonl").read_bytes().splitlines()]
    assert all(m["etag"] and len(m["hash"]) == 32 for m in manifest)
