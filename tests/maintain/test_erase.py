"""Right to erasure: a planted document leaves no trace in any file, and the output stays valid and exact."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from click.testing import CliRunner
from tokenizers import Tokenizer

from corpusforge import run
from corpusforge.cli import main as cli
from corpusforge.loader.reader import open_shard
from corpusforge.maintain import erase as erase_mod
from corpusforge.maintain.erase import ERASURES, JOURNAL, Selector, erase
from corpusforge.maintain.version import build_version, load_version
from corpusforge.observe.lineage import read_lineage
from corpusforge.shards.edit import cut_pieces
from corpusforge.shards.packer import sample_tensors
from corpusforge.shards.validate import validate_output
from corpusforge.staging import read_documents
from corpusforge.tokenize.special import BOS, EOS, NUM_SPECIAL, PAD
from tests.conftest import small_recipe

PLANTED = "Zebulon Quartermaine of 17 Marigold Lane hides his spare key under the blue heron statue."
NEEDLES = ("Zebulon Quartermaine", "Marigold Lane")


def _paragraphs(shared_data: Path, n: int) -> list[str]:
    lines = (shared_data / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if len(line) > 400][:n]


def _write_people(folder: Path, shared_data: Path) -> Path:
    """A JSONL source of real paragraphs: one carries the planted sentence (twice, so dedup drops a
    copy), and a malformed line quoting it lands in quarantine."""
    paras = _paragraphs(shared_data, 40)
    planted = f"{paras[0]} {PLANTED} {paras[1]}"
    lines = [json.dumps({"text": p}) for p in paras[2:]]
    lines[5:5] = [json.dumps({"text": planted})]
    lines[20:20] = [json.dumps({"text": planted}), '{"text": "broken record: ' + PLANTED]
    path = folder / "people.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _recipe(people: Path, shared_data: Path, documents: str = "jsonl", **sharding) -> dict:
    return small_recipe(
        [{"name": "people", "path": str(people), "text_field": "text"},
         {"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg" / "pg26184.txt"), "text_unit": "paragraph"}],
        steps=[{"type": "normalize", "collapse_spaces": True}, {"type": "exact_dedup"}],
        sharding={"shuffle": True, "max_shard_bytes": 60_000, **sharding},
        output={"documents": documents, "audit": True})


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("erase")
    recipe = _recipe(_write_people(root, shared_data), shared_data)
    run(recipe, output=str(root / "out"), workers=1, progress=False)
    return root / "out", recipe


@pytest.fixture
def out(built, tmp_path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(built[0], dst)
    return dst


def _decoder(output: Path):
    if (output / "tokenizer.model").exists():
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(output / "tokenizer.model"))
        return lambda ids: sp.decode([i for i in ids if i >= NUM_SPECIAL])
    tok = Tokenizer.from_file(str(output / "tokenizer.json"))
    return lambda ids: tok.decode(ids, skip_special_tokens=True)


def _traces(output: Path) -> list[str]:
    """Every file under ``output`` in which a needle occurs: raw, decompressed, parsed, or decoded from tokens."""
    decode = _decoder(output)
    index = orjson.loads((output / "shard_index.json").read_bytes())
    length, splits = index["sequence_length"], set(index["splits"])
    found = []
    for path in sorted(p for p in output.rglob("*") if p.is_file()):
        data = path.read_bytes()
        views = [data]
        if path.name.endswith(".zst"):
            views.append(zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30))
        if path.name.endswith(".gz"):
            views.append(gzip.decompress(data))
        if ".parquet" in path.name:
            views.append(orjson.dumps(pq.read_table(path).to_pylist(), default=str))
        rel = path.relative_to(output).parts
        if (rel[0] in splits or rel[:2] in (("_work", "shards"), ("_work", "shuffled"))) and not path.name.endswith(".idx"):
            ids = open_shard(path, length)["input_ids"]
            views.append(decode(np.asarray(ids).reshape(-1).tolist()).encode())
        if any(n.encode() in v for n in NEEDLES for v in views):
            found.append(path.relative_to(output).as_posix())
    return found


def _planted_ids(output: Path) -> set[str]:
    return {d.id for f in (output / "_work" / "curate").glob("*.parquet") for d in read_documents(f) if PLANTED in d.text}


def _assert_lineage_exact(output: Path) -> None:
    """Every non-pad token of every shard is the traced span of one kept document, as test_lineage checks."""
    tok = Tokenizer.from_file(str(output / "tokenizer.json"))
    docs = {d.id: d for f in sorted((output / "documents").glob("*")) for d in read_documents(f)}
    framed = {i: [BOS, *e.ids, EOS] for i, e in zip(
        docs, tok.encode_batch([d.text for d in docs.values()], add_special_tokens=False), strict=True)}
    index = orjson.loads((output / "shard_index.json").read_bytes())
    lineage = read_lineage(output).to_pylist()
    seen: dict[str, int] = {}
    starts = 0
    for shard in index["shards"]:
        ids = open_shard(output / shard["path"], index["sequence_length"])["input_ids"]
        covered = np.zeros(ids.shape, dtype=np.int32)
        for p in (p for p in lineage if p["shard"] == shard["path"]):
            covered[p["row"], p["token_start"]:p["token_end"]] += 1
            got, whole = ids[p["row"], p["token_start"]:p["token_end"]].tolist(), framed[p["doc_id"]]
            assert any(whole[k:k + len(got)] == got for k in range(len(whole) - len(got) + 1))
            seen[p["doc_id"]] = seen.get(p["doc_id"], 0) + len(got)
        assert np.array_equal(covered, (ids != PAD).astype(np.int32)), shard["path"]
        assert int(np.count_nonzero(ids != PAD)) == shard["tokens"] and len(ids) == shard["samples"]
        starts += sum(int(ids[p["row"], p["token_start"]] == BOS) for p in lineage if p["shard"] == shard["path"])
    assert seen.keys() == framed.keys() and all(seen[i] % len(f) == 0 for i, f in framed.items())  # mixture copies
    stats = orjson.loads((output / "stats.json").read_bytes())
    assert sum(s["documents"] for s in stats["splits"].values()) == stats["documents"]["kept"] == starts


def test_cutting_a_document_shifts_the_row_left_pads_it_and_drops_emptied_rows():
    ids = np.array([[BOS, 20, 21, EOS, BOS, 30, 31, 32],
                    [33, EOS, BOS, 40, EOS, PAD, PAD, PAD],
                    [34, 35, 36, 37, 38, 39, 40, 41]], dtype=np.int32)
    lineage = pa.table({"row": [0, 0, 1, 1, 2], "token_start": [0, 4, 0, 2, 0], "token_end": [4, 8, 2, 5, 8],
                        "doc_id": ["a", "b", "b", "c", "d"], "source_name": ["s", "s", "s", "t", "t"]})
    edit = cut_pieces(ids, lineage, np.array([True, False, False, False, True]))
    assert edit.input_ids.tolist() == [[BOS, 30, 31, 32, PAD, PAD, PAD, PAD], [33, EOS, BOS, 40, EOS, PAD, PAD, PAD]]
    assert edit.lineage.to_pydict() == {"row": [0, 1, 1], "token_start": [0, 0, 2], "token_end": [4, 2, 5],
                                        "doc_id": ["b", "b", "c"], "source_name": ["s", "s", "t"]}
    assert (edit.tokens_removed, edit.rows_removed) == (12, 1)
    assert edit.copies_removed == {"s": 1, "t": 0} and edit.tokens_by_source == {"s": 4, "t": 8}
    t = sample_tensors(edit.input_ids, position_ids=True, document_ids=True)
    assert t["labels"][0].tolist() == [-100, 30, 31, 32, -100, -100, -100, -100]
    assert t["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert t["document_ids"][1].tolist() == [0, 0, 1, 1, 1, -1, -1, -1]


def test_erase_by_match_leaves_no_trace_of_the_planted_sentence_in_any_file(out):
    before = _traces(out)
    # the test can fail: the sentence is in the shards, kept and staged documents and quarantine first
    assert {"documents/part_000000.jsonl", "_work/curate/task_000000.parquet"} <= set(before)
    assert any(f.startswith("quarantine/") for f in before) and any(f.startswith("train/") or f.startswith("val/")
                                                                    or f.startswith("test/") for f in before)
    planted = _planted_ids(out)
    assert len(planted) == 2  # the document and its duplicate that exact_dedup dropped
    version = load_version(out)["version"]
    dry = CliRunner().invoke(cli, ["erase", str(out), "--match", r"Zebulon\s+Quartermaine", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    listed = [json.loads(line) for line in dry.output.splitlines()]
    assert {r["doc_id"] for r in listed[:-1]} == planted and listed[-1]["dry_run"] is True
    assert listed[-1]["quarantine_records"] == 1
    assert load_version(out)["version"] == version and _traces(out) == before

    done = CliRunner().invoke(cli, ["erase", str(out), "--match", r"Zebulon\s+Quartermaine"])
    assert done.exit_code == 0, done.output
    assert _traces(out) == []
    assert validate_output(out)[0] == []
    record = orjson.loads((out / ERASURES).read_bytes().splitlines()[-1])
    assert set(record["documents"]) == planted and record["documents_in_shards"] == 1
    assert record["selector"] == {"match_sha256": hashlib.sha256(rb"Zebulon\s+Quartermaine").hexdigest()}
    assert record["version_before"] == version != record["version_after"] == load_version(out)["version"]
    assert any(f.startswith("audit/shards/") for f in record["files_scrubbed"])  # the dedup drop record


def test_erase_by_id_rewrites_only_the_shards_that_held_it_and_keeps_every_count_exact(out):
    index = orjson.loads((out / "shard_index.json").read_bytes())
    stats = orjson.loads((out / "stats.json").read_bytes())
    lineage = read_lineage(out)
    doc_id = next(iter(_planted_ids(out) & set(lineage["doc_id"].to_pylist())))
    mine = [p for p in lineage.to_pylist() if p["doc_id"] == doc_id]
    assert len(mine) >= 2  # the planted document crosses rows
    tokens = sum(p["token_end"] - p["token_start"] for p in mine)
    result = CliRunner().invoke(cli, ["erase", str(out), "--doc-id", doc_id, "--doc-id", "0000000000000000"])
    assert result.exit_code == 0, result.output
    assert "not found: document '0000000000000000'" in result.output
    after = orjson.loads((out / "shard_index.json").read_bytes())
    touched = {p["shard"] for p in mine}
    old = {s["path"]: s["sha256"] for s in index["shards"]}
    new = {s["path"]: s["sha256"] for s in after["shards"]}
    assert {p for p in new if new[p] != old[p]} == touched and new.keys() <= old.keys()
    assert after["totals"]["tokens"] == index["totals"]["tokens"] - tokens
    new_stats = orjson.loads((out / "stats.json").read_bytes())
    assert new_stats["tokens"] == stats["tokens"] - tokens and new_stats["documents"]["kept"] == stats["documents"]["kept"] - 1
    assert new_stats["tokens_by_source"]["people"]["tokens"] == stats["tokens_by_source"]["people"]["tokens"] - tokens
    assert new_stats["shards"] == after["totals"] and new_stats["erased"] == {"erasures": 1, "documents": 1, "tokens": tokens}
    assert doc_id not in set(read_lineage(out)["doc_id"].to_pylist())
    assert load_version(out) == build_version(out)
    card = (out / "README.md").read_text()
    assert f"{after['totals']['tokens']:,} tokens" in card and f"{index['totals']['tokens']:,} tokens" not in card
    assert not (out / JOURNAL).exists() and not (out / "_work" / "shards").exists()
    assert validate_output(out)[0] == []
    _assert_lineage_exact(out)
    again = CliRunner().invoke(cli, ["erase", str(out), "--doc-id", doc_id])
    assert again.exit_code == 1 and f"already erased: document '{doc_id}'" in again.output


def test_erase_by_source_removes_all_its_documents_and_its_quarantined_records(out):
    result = CliRunner().invoke(cli, ["erase", str(out), "--source", "people"])
    assert result.exit_code == 0, result.output
    assert set(read_lineage(out)["source_name"].to_pylist()) == {"gutenberg"}
    assert not any(b"people.jsonl" in f.read_bytes() for f in (out / "quarantine").rglob("*.jsonl"))
    stats = orjson.loads((out / "stats.json").read_bytes())
    assert stats["tokens_by_source"]["people"]["tokens"] == 0 and stats["tokens_by_source"]["gutenberg"]["share"] == 1.0
    assert validate_output(out)[0] == []
    _assert_lineage_exact(out)


@pytest.mark.parametrize("args,code,says", [
    (["--doc-id", "ffffffffffffffff"], 1, "nothing matched"),
    (["--match", "no such words anywhere qq"], 1, "nothing matched"),
    (["--match", "(unclosed"], 2, "not a valid regular expression"),
    ([], 2, "give exactly one selector"),
    (["--source", "people", "--match", "x"], 2, "give exactly one selector"),
])
def test_erase_exit_codes_say_nothing_matched_or_what_is_wrong(out, args, code, says):
    version = load_version(out)["version"]
    result = CliRunner().invoke(cli, ["erase", str(out), *args])
    assert result.exit_code == code and says in " ".join(result.output.split())
    assert load_version(out)["version"] == version and not (out / ERASURES).exists()


def test_a_rerun_after_an_erasure_rebuilds_the_shards_without_the_erased_documents(out, built):
    planted = _planted_ids(out)
    assert erase(out, Selector(match="Zebulon"))[1] is not None
    run(built[1], output=str(out), workers=1, progress=False)
    assert not planted & set(read_lineage(out)["doc_id"].to_pylist())
    assert validate_output(out)[0] == [] and _traces(out) == []


def test_an_erasure_cut_off_after_its_journal_is_finished_by_the_next_erase(out, monkeypatch):
    finish = erase_mod.finish_journal

    def crash(output):
        raise KeyboardInterrupt

    monkeypatch.setattr(erase_mod, "finish_journal", crash)
    with pytest.raises(KeyboardInterrupt):
        erase(out, Selector(match="Zebulon"))
    assert (out / JOURNAL).exists() and validate_output(out)[0] == []  # nothing renamed yet
    monkeypatch.setattr(erase_mod, "finish_journal", finish)
    plan, record = erase(out, Selector(match="Zebulon"))
    assert plan.empty and record is None  # the journal's erasure already removed everything
    assert len((out / ERASURES).read_bytes().splitlines()) == 1
    assert validate_output(out)[0] == [] and _traces(out) == []


@pytest.mark.parametrize("sharding", [{"format": "npy"}, {"format": "parquet"}, {"format": "megatron"},
                                      {"compression": "zstd", "position_ids": True, "document_ids": True},
                                      {"packing": "pad", "shuffle": False, "documents": "parquet"},
                                      {"mixture": {"people": 2.0}}])
def test_erase_works_for_every_shard_format(tmp_path, shared_data, sharding):
    people = _write_people(tmp_path, shared_data)
    out = tmp_path / "out"
    run(_recipe(people, shared_data, **sharding), output=str(out), workers=1, progress=False)
    (out / "stray").mkdir()
    (out / "stray" / ".x.erase-0000").write_bytes(b"left by an erasure cut off before its journal")
    plan, record = erase(out, Selector(match="Zebulon"))
    assert record is not None and record["shards_changed"] and not (out / "stray" / ".x.erase-0000").exists()
    index = orjson.loads((out / "shard_index.json").read_bytes())
    for s in index["shards"]:
        files = [s["path"], *(side["path"] for side in s.get("sidecars", []))]
        assert s["bytes"] == sum((out / f).stat().st_size for f in files)
        assert hashlib.sha256((out / s["path"]).read_bytes()).hexdigest() == s["sha256"]
        for side in s.get("sidecars", []):
            assert hashlib.sha256((out / side["path"]).read_bytes()).hexdigest() == side["sha256"]
    assert validate_output(out)[0] == []
    if "position_ids" in index["dtypes"]:
        t = open_shard(out / index["shards"][0]["path"])
        assert np.array_equal(t["position_ids"], sample_tensors(np.asarray(t["input_ids"]), True, True)["position_ids"])
    _assert_lineage_exact(out)
    assert _traces(out) == []


@pytest.mark.parametrize("tokenizer", ["bpe", "sentencepiece_bpe"])
def test_match_decodes_the_shards_when_no_copy_of_the_text_is_kept(tmp_path, shared_data, tokenizer):
    recipe = _recipe(_write_people(tmp_path, shared_data), shared_data, documents="none")
    recipe["tokenizer"] = {"type": tokenizer, "vocab_size": 600}
    out = tmp_path / "out"
    run(recipe, output=str(out), workers=1, progress=False)
    shutil.rmtree(out / "_work")
    assert any(f.endswith(".safetensors") for f in _traces(out))
    plan, record = erase(out, Selector(match=r"Quartermaine of \d+ Marigold"))
    assert len(plan.documents) == 1 and record["documents_in_shards"] == 1 and record["quarantine_records_removed"] == 1
    assert validate_output(out)[0] == [] and _traces(out) == []


def test_documented_erase_example_runs(built, tmp_path):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observe.md").read_text(encoding="utf-8")
    bash = next(b for b in re.findall(r"```bash\n(.*?)```", doc, re.S) if "corpusforge erase" in b)
    out = tmp_path / "out"
    shutil.copytree(built[0], out)
    script = "\n".join(line for line in bash.replace("/tmp/cf-observe-demo", str(out)).splitlines()
                       if not line.startswith("corpusforge demo"))
    prelude = f'corpusforge() {{ "{sys.executable}" -m corpusforge.cli "$@"; }}\nset -e -o pipefail\n'
    # the example erases by a regex over the demo's text; here, over the planted sentence
    script = script.replace("Guido van Rossum", "Zebulon Quartermaine")
    done = subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "would remove 2 document(s)" in done.stdout and "removed 2 document(s)" in done.stdout
    assert _traces(out) == []
