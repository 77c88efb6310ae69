"""Tasks are sized on decompressed bytes, so a few gzip files still give every worker work."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import orjson
import pytest
import zstandard

from corpusforge.observe.stats import TaskContext
from corpusforge.recipe import ExecutorConfig
from corpusforge.sources.files import MAX_COMPRESSED_SPLITS, FilesSource


def _lines(shared_data: Path, n_bytes: int) -> bytes:
    """JSONL of Gutenberg paragraphs, numbered so no two lines are equal, at least ``n_bytes`` long."""
    paras = [p for f in sorted((shared_data / "prose" / "gutenberg").glob("*.txt"))
             for p in f.read_text().split("\n\n") if p.strip()]
    out, i = [], 0
    while sum(map(len, out)) < n_bytes:
        out.append(orjson.dumps({"text": f"{i} {paras[i % len(paras)]}"}) + b"\n")
        i += 1
    return b"".join(out)


def _read_all(src: FilesSource, tmp: Path, task_bytes: int) -> tuple[list, list[tuple[str, int, str]]]:
    tasks = src.plan(task_bytes)
    ctx = TaskContext("curate", 0, tmp)
    docs = [(d.id, d.offset, d.text) for t in tasks for d in src.read(t, ctx)]
    assert not ctx.quarantined
    return tasks, docs


@pytest.mark.parametrize("suffix,compress", [
    (".jsonl.gz", lambda b: gzip.compress(b, 6)),
    (".jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    (".jsonl.bz2", bz2.compress),
])
def test_a_compressed_file_is_split_by_its_decompressed_bytes_into_the_same_documents(
        shared_data, tmp_path, suffix, compress):
    raw = _lines(shared_data, 600_000)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / f"a{suffix}").write_bytes(compress(raw))
    src = FilesSource("s", str(tmp_path / "in"))
    whole_tasks, whole = _read_all(src, tmp_path, 1 << 40)
    tasks, split = _read_all(src, tmp_path, 100_000)
    assert len(whole_tasks) == 1 and 3 <= len(tasks) <= MAX_COMPRESSED_SPLITS
    assert split == whole  # same ids, offsets and texts, each document read by exactly one task
    assert len(whole) == raw.count(b"\n")
    assert tasks[-1].parts[0].end == -1  # the last range reads to the end, whatever the estimate said
    assert sum(t.nbytes for t in tasks) == (tmp_path / "in" / f"a{suffix}").stat().st_size  # input bytes in stats


def test_eight_gzip_files_of_a_hundred_megabytes_make_at_least_sixteen_tasks_at_the_default(tmp_path):
    """The default task size on a 100 MB corpus in 8 gzip files (planned from the gzip trailers,
    written as 12.5 MB of incompressible-looking text each would take too long: sizes are what count)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(8):
        # A gzip member holding 12.5 MB of one repeated line: its trailer records the size.
        (folder / f"part_{k}.jsonl.gz").write_bytes(gzip.compress(b'{"text": "a b c"}\n' * 694_445))
    tasks = FilesSource("s", str(folder)).plan(ExecutorConfig().task_bytes)
    assert 16 <= len(tasks) <= 64
    assert len({t.parts[0].path for t in tasks}) == 8


def test_a_plain_file_named_like_text_but_holding_gzip_is_split_as_compressed(shared_data, tmp_path):
    raw = _lines(shared_data, 400_000)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(gzip.compress(raw))
    src = FilesSource("s", str(tmp_path / "in"))
    _, whole = _read_all(src, tmp_path, 1 << 40)
    tasks, split = _read_all(src, tmp_path, 50_000)
    assert len(tasks) > 1 and split == whole
