"""Lineage: every shard token is traced to exactly one document span, after shuffle and curation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer

from corpusforge import run
from corpusforge.cli import main as cli
from corpusforge.layout import OutputLayout
from corpusforge.loader.reader import open_shard
from corpusforge.observe import lineage
from corpusforge.observe.lineage import trace_document, trace_row
from corpusforge.shards.packer import Packer
from corpusforge.staging import read_documents
from corpusforge.tokenize.special import BOS, EOS, PAD
from tests.conftest import small_recipe


def test_concat_placement_splits_a_document_over_the_rows_it_crosses():
    p = Packer(4, "concat")
    first = p.add_documents([[10, 11], [12, 13, 14, 15]])  # framed sizes 4 and 6
    second = p.add_documents([[16]])  # framed size 3, continues the stream at token 10
    assert first.tolist() == [[0, 0, 0, 4], [1, 1, 0, 4], [1, 2, 0, 2]]
    assert second.tolist() == [[0, 2, 2, 4], [0, 3, 0, 1]]


@pytest.mark.parametrize(("mode", "expected"), [
    ("pad", [[0, 0, 0, 3], [1, 1, 0, 4], [1, 2, 0, 2]]),
    ("truncate", [[0, 0, 0, 3], [1, 1, 0, 4]]),
])
def test_pad_and_truncate_placements_give_each_document_its_own_rows(mode, expected):
    p = Packer(4, mode)
    assert p.add_documents([[10], [11, 12, 13, 14]]).tolist() == expected
    rows = p.take_full()
    assert rows[1].tolist() == [BOS, 11, 12, 13]
    assert p.add_documents([[20]]).tolist() == [[0, len(rows), 0, 3]]


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_data) -> Path:
    out = tmp_path_factory.mktemp("lineage") / "out"
    recipe = small_recipe(
        [{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"},
         {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph"}],
        steps=[{"type": "normalize", "collapse_spaces": True}, {"type": "exact_dedup"}],
        sharding={"shuffle": True}, output={"documents": "parquet"})
    run(recipe, output=str(out), workers=1)
    return out


@pytest.fixture(scope="module", params=[True, False], ids=["shuffled", "in_order"])
def many_tasks_and_shards(request, tmp_path_factory, shared_data) -> Path:
    """Several shard tasks, each with several lineage row groups, feeding several shards per split."""
    out = tmp_path_factory.mktemp("lineage_many") / "out"
    recipe = small_recipe(
        [{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"},
         {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph"}],
        sharding={"shuffle": request.param, "max_tokens_per_shard": 128 * 150, "encode_batch_bytes": 20_000,
                  "splits": {"train": 0.9, "val": 0.1}},
        executor={"task_bytes": 200_000}, output={"documents": "parquet"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lineage, "ROW_GROUP_ROWS", 500)
        run(recipe, output=str(out), workers=1)
    return out


def test_every_shard_token_is_the_traced_span_of_exactly_one_document(built):
    assert orjson.loads((built / "shard_index.json").read_bytes())["shuffled"] is True
    _assert_lineage_covers_every_token_once(built)


def test_lineage_of_many_tasks_over_many_shards_covers_every_token_once(many_tasks_and_shards):
    out = many_tasks_and_shards
    index = orjson.loads((out / "shard_index.json").read_bytes())
    for split in ("train", "val"):
        tasks = sorted((out / "_work" / "lineage" / split).glob("*.parquet"))
        assert len(tasks) > 1 and sum(s["split"] == split for s in index["shards"]) > 1
    assert max(pq.ParquetFile(t).metadata.num_row_groups for t in tasks) > 1
    assert not OutputLayout(out).lineage_spills.exists()
    _assert_lineage_covers_every_token_once(out)


def _assert_lineage_covers_every_token_once(built: Path) -> None:
    """Every non-pad shard token lies in exactly one lineage span, which holds its document's tokens."""
    tok = Tokenizer.from_file(str(built / "tokenizer.json"))
    docs = {d.id: d for f in sorted((built / "documents").glob("*.parquet")) for d in read_documents(f)}
    framed = {i: [BOS, *e.ids, EOS] for i, e in zip(docs, tok.encode_batch([d.text for d in docs.values()],
                                                                           add_special_tokens=False), strict=True)}
    index = orjson.loads((built / "shard_index.json").read_bytes())
    seen_docs: dict[str, int] = {}
    for shard in index["shards"]:
        ids = open_shard(str(built / shard["path"]), index["sequence_length"])["input_ids"]
        covered = np.zeros(ids.shape, dtype=np.int32)
        name = Path(shard["path"]).name.split(".")[0]
        lineage = duckdb.sql(f"SELECT * FROM '{built}/lineage/{shard['split']}/{name}.parquet'").fetchall()
        for shard_path, row, lo, hi, doc_id, _, uri, offset, _ in lineage:
            assert shard_path == shard["path"]
            doc = docs[doc_id]
            assert (uri, offset, doc.metadata["split"]) == (doc.source, doc.offset, shard["split"])
            covered[row, lo:hi] += 1
            seen_docs[doc_id] = seen_docs.get(doc_id, 0) + hi - lo
            got = ids[row, lo:hi].tolist()
            whole = framed[doc_id]
            # a piece is the document's start (BOS first), its end (EOS last) or its middle
            assert got == whole[: hi - lo] or got == whole[len(whole) - (hi - lo):] or _is_slice(got, whole)
        assert np.array_equal(covered, (ids != PAD).astype(np.int32)), shard["path"]
    assert seen_docs == {i: len(f) for i, f in framed.items()}


def _is_slice(part: list[int], whole: list[int]) -> bool:
    return any(whole[k : k + len(part)] == part for k in range(len(whole) - len(part) + 1))


def test_lineage_names_the_steps_that_changed_a_document(built):
    counts = dict(duckdb.sql(f"""SELECT list_contains(modified_by, 'normalize') AS changed, count(DISTINCT doc_id)
                                 FROM '{built}/lineage/*/*.parquet' GROUP BY changed""").fetchall())
    docs = [d for f in sorted((built / "documents").glob("*.parquet")) for d in read_documents(f)]
    changed = sum("normalize" in d.metadata.get("modified_by", ()) for d in docs)
    assert 0 < changed < len(docs)
    assert counts == {True: changed, False: len(docs) - changed}


def test_trace_answers_both_directions(built):
    first = orjson.loads((built / "shard_index.json").read_bytes())["shards"][0]["path"]
    in_row = trace_row(built, first, 3)
    doc_id = in_row[0]["doc_id"]
    assert {"shard": first, "row": 3} in [{"shard": r["shard"], "row": r["row"]} for r in trace_document(built, doc_id)]
    result = CliRunner().invoke(cli, ["trace", str(built), "--doc-id", doc_id, "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == trace_document(built, doc_id)


def test_trace_of_a_row_past_the_shard_end_names_the_shard(built):
    result = CliRunner().invoke(cli, ["trace", str(built), "--shard", "train/shard_00000.safetensors", "--row", "99999"])
    assert result.exit_code == 2
    assert "no row 99999 in shard 'train/shard_00000.safetensors'" in " ".join(result.output.split())


def test_documented_trace_and_duckdb_examples_run(built):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observe.md").read_text(encoding="utf-8")
    demo = "/tmp/cf-observe-demo"
    bash = re.search(r"```bash\n(.*?)```", doc, re.S).group(1).replace(demo, str(built))
    script = "\n".join(line for line in bash.splitlines() if not line.startswith("corpusforge demo"))
    prelude = (f'corpusforge() {{ "{sys.executable}" -m corpusforge.cli "$@"; }}\n'
               f'python() {{ "{sys.executable}" "$@"; }}\nset -e -o pipefail\n')
    done = subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("train/shard_00000") >= 2
    sql = re.search(r"```sql\n(.*?)```", doc, re.S).group(1).replace(demo, str(built))
    by_source, touched = [duckdb.sql(q).fetchall() for q in sql.split(";") if "SELECT" in q]
    assert {name for name, _, _ in by_source} == {"gutenberg", "wikitext"}
    assert touched


def test_an_output_whose_shard_tasks_left_no_lineage_gets_none_and_trace_says_so(tmp_path, shared_data):
    out = tmp_path / "out"
    recipe = small_recipe([{"name": "g", "path": str(shared_data / "prose" / "gutenberg" / "pg26184.txt")}])
    run(recipe, output=str(out), workers=1)
    for f in (out / "_work" / "lineage").glob("*/*.parquet"):  # as left by a corpusforge before lineage
        f.unlink()
    (out / "shard_index.json").unlink()
    run(recipe, output=str(out), workers=1)
    assert not list((out / "lineage").glob("*/*.parquet"))
    result = CliRunner().invoke(cli, ["trace", str(out), "--doc-id", "x"])
    assert result.exit_code == 2 and "before lineage existed" in " ".join(result.output.split())
