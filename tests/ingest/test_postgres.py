"""The SQL source against a real PostgreSQL 15 started on 127.0.0.1 by the test."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from corpusforge import run


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    bindir = _pg_bin()
    # pytest's tmp folders are private to their owner, so the cluster lives in a folder of its own.
    top = Path(tempfile.mkdtemp(prefix="cf-pg-"))
    os.chmod(top, 0o755)
    root = top / "pg"
    root.mkdir()
    # initdb refuses to run as root: run the server as the postgres user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data = root / "data"
    port = _free_port()
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                    f"-h 127.0.0.1 -p {port} -k {root}", "start"], check=True, capture_output=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 20
    import sqlalchemy as sa

    while True:
        try:
            sa.create_engine(url).connect().close()
            break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    yield url
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"], capture_output=True)
    shutil.rmtree(top, ignore_errors=True)


def test_postgres_query_rows_become_documents(postgres, tmp_path, monkeypatch):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres)
    with engine.begin() as conn:
        conn.execute(sa.text("create table notes (id serial primary key, title text, body text, at date)"))
        for i in range(7):
            conn.execute(sa.text("insert into notes (title, body, at) values (:t, :b, '2024-01-02')"),
                         {"t": f"title {i}", "b": f"body text {i}"})
    engine.dispose()
    monkeypatch.setenv("NOTES_DB", postgres)
    stats = run({"sources": [{"type": "sql", "name": "pg", "url_env": "NOTES_DB", "batch_size": 3,
                              "query": "select id, title, body, at from notes order by id",
                              "text_template": "{title}\n{body}"}],
                 "steps": [], "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32},
                 "output": {"documents": "jsonl"}}, output=str(tmp_path / "out"), workers=1)
    assert stats["documents"]["read"] == 7
    import orjson

    docs = [orjson.loads(x) for p in (tmp_path / "out" / "documents").glob("*.jsonl") for x in p.read_bytes().splitlines()]
    first = min(docs, key=lambda d: d["offset"])
    assert first["text"] == "title 0\nbody text 0"
    assert first["metadata"]["at"] == "2024-01-02"
