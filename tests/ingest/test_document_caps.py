"""``max_document_bytes`` for every source (issue 19): applied by the base class to whatever a
source yields, and for Parquet decided from the footer before a giant value is read."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.config import allowed_params
from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext
from corpusforge.registry import SOURCES
from corpusforge.sources.base import Part, Source, TaskInput
from corpusforge.sources.sql import SqlSource
from tests.conftest import REPO, SHARED_DATA

from .helpers import read_all

CAP = 8 * 1024 * 1024
TOO_LARGE = "document too large: over 8,388,608 bytes (max_document_bytes)"
PARAS = [p for p in (SHARED_DATA / "prose" / "gutenberg" / "pg84.txt").read_text(encoding="utf-8").split("\n\n")
         if p.strip()]


def _giant_parquet(path: Path, giant: str) -> None:
    """Row groups: three paragraphs, the giant text alone, one more paragraph."""
    schema = pa.schema([("text", pa.string()), ("n", pa.int64())])
    with pq.ParquetWriter(path, schema) as w:
        w.write_table(pa.table({"text": PARAS[:3], "n": [0, 1, 2]}, schema=schema))
        w.write_table(pa.table({"text": [giant], "n": [3]}, schema=schema))
        w.write_table(pa.table({"text": [PARAS[3]], "n": [4]}, schema=schema))


def test_a_giant_parquet_value_alone_in_its_row_group_is_refused_unread(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "rows.parquet"
    _giant_parquet(path, "x" * (CAP + 200_000))
    read_groups: list[int] = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: read_groups.append(i) or real(self, i, *a, **k))
    docs, quarantined = read_all(path, tmp_path)
    assert [(d.offset, d.text, d.metadata) for d in docs] == [
        (i, PARAS[i], {"n": i, "source_name": "t"}) for i in (0, 1, 2)] + [(4, PARAS[3], {"n": 4, "source_name": "t"})]
    assert quarantined == [{"location": f"{path} at 3", "reason": TOO_LARGE}]
    assert read_groups == [0, 2]


def test_without_a_cap_the_giant_value_is_a_document(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    _giant_parquet(path, "y" * (CAP + 1))
    docs, quarantined = read_all(path, tmp_path, max_document_bytes=None)
    assert [len(d.text) for d in docs] == [len(p) for p in PARAS[:3]] + [CAP + 1, len(PARAS[3])]
    assert quarantined == []


def test_a_value_just_over_the_cap_is_read_then_quarantined_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    _giant_parquet(path, "z" * (CAP + 1))  # within the footer's margin: read, then capped
    docs, quarantined = read_all(path, tmp_path)
    assert [d.offset for d in docs] == [0, 1, 2, 4] and quarantined == [{"location": f"{path} at 3", "reason": TOO_LARGE}]


MAKE = """
import sys, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"text": ["giant " * (100 * 1024 * 1024 // 6)]}), sys.argv[1], compression="zstd")
"""
READ = """
import sys
from pathlib import Path
from corpusforge.observe.stats import TaskContext, peak_rss_mb
from corpusforge.sources.files import FilesSource
src = FilesSource("giant", sys.argv[1])
ctx = TaskContext("curate", 0, Path(sys.argv[2]))
assert [d for t in src.plan(1 << 26) for d in src.read(t, ctx)] == []
assert [q["reason"] for q in ctx.quarantined] == [sys.argv[3]], ctx.quarantined
print(peak_rss_mb())
"""


def test_refusing_a_100_mb_parquet_value_costs_no_memory(tmp_path: Path) -> None:
    path = tmp_path / "giant.parquet"
    subprocess.run([sys.executable, "-c", MAKE, str(path)], check=True, timeout=120)
    out = subprocess.run([sys.executable, "-c", READ, str(path), str(tmp_path / "ctx"), TOO_LARGE],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 200  # reading the value would take over 300 MB (text, pylist, str)


# -- sources other than files ---------------------------------------------------------------------------

class _Book(Source):
    """A minimal source with no cap option of its own: the paragraphs of a book, then a giant text."""

    def __init__(self, name: str = "book"):
        self.source_name = name

    def plan(self, task_bytes: int) -> list[TaskInput]:
        return [TaskInput(self.source_name, (Part("book"),))]

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        yield Document(PARAS[0], "a", "book", 0)
        yield Document("é" * (CAP // 2 + 1), "b", "book", 1)  # fewer characters than the cap, more bytes
        yield Document(PARAS[1], "c", "book", 2)


def test_a_source_without_the_option_is_capped_at_the_default(tmp_path: Path) -> None:
    src = _Book()
    ctx = TaskContext("curate", 0, tmp_path)
    [task] = src.plan(1)
    assert [d.id for d in src.documents(task, ctx)] == ["a", "c"]
    assert ctx.quarantined == [{"location": "book at 1", "reason": TOO_LARGE}]


def test_a_sql_source_quarantines_rows_over_its_cap(tmp_path: Path) -> None:
    db = tmp_path / "posts.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table posts (id integer, body text)")
        conn.executemany("insert into posts values (?, ?)", [(i, PARAS[i]) for i in range(6)])
    cap = sorted(len(p.encode()) for p in PARAS[:6])[3]
    src = SqlSource(name="db", url=f"sqlite:///{db}", query="select id, body as text from posts order by id",
                    id_field="id", max_document_bytes=cap)
    ctx = TaskContext("curate", 0, tmp_path)
    docs = [d for t in src.plan(1) for d in src.read(t, ctx)]
    assert [d.id for d in docs] == [str(i) for i in range(6) if len(PARAS[i].encode()) <= cap]
    assert len(ctx.quarantined) == 2 and {q["reason"] for q in ctx.quarantined} == {
        f"document too large: over {cap:,} bytes (max_document_bytes)"}


@pytest.mark.parametrize("kind", ["files", "urls", "rest_api", "hf_dataset", "sql", "git", "corpusforge"])
def test_every_source_type_takes_max_document_bytes(kind: str) -> None:
    assert "max_document_bytes" in allowed_params(SOURCES.get(kind))


def test_a_cap_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match=r"max_document_bytes: 0 must be 1 or more \(null: no limit\)"):
        SqlSource(name="db", url="sqlite:///x.db", query="select 1", max_document_bytes=0)
