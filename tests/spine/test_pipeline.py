"""End-to-end invariants of the spine on real text: tokens, determinism, resume, shard format."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from safetensors.numpy import load_file as load_numpy
from tokenizers import Tokenizer

from corpusforge import run
from corpusforge.shards.validate import validate_output
from corpusforge.staging import read_documents
from tests.conftest import small_recipe


def _prose(shared_data: Path) -> list[dict]:
    return [
        {"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"},
        {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph"},
    ]


def _checksums(out: Path) -> dict[str, str]:
    index = orjson.loads((out / "shard_index.json").read_bytes())
    return {s["path"]: s["sha256"] for s in index["shards"]}


def test_no_token_is_lost_in_packing(tmp_path, shared_data):
    out = tmp_path / "out"
    run(small_recipe(_prose(shared_data), output={"documents": "parquet"}), output=str(out), workers=1)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    index = orjson.loads((out / "shard_index.json").read_bytes())
    docs = [d for f in sorted((out / "documents").glob("*.parquet")) for d in read_documents(f)]
    assert docs, "the run kept no document"
    for split in index["splits"]:
        texts = [d.text for d in docs if d.metadata["split"] == split]
        expected = sum(len(e.ids) + 2 for e in tok.encode_batch(texts, add_special_tokens=False))
        shards = [load_numpy(str(out / s["path"])) for s in index["shards"] if s["split"] == split]
        got = sum(int(np.count_nonzero(t["input_ids"])) for t in shards)
        bos = sum(int(np.count_nonzero(t["input_ids"] == 2)) for t in shards)
        assert got == expected, split
        assert bos == len(texts), split


def test_same_recipe_gives_byte_identical_shards_for_any_worker_count(tmp_path, shared_data):
    recipe = small_recipe(_prose(shared_data))
    run(recipe, output=str(tmp_path / "w1"), workers=1)
    run(recipe, output=str(tmp_path / "w2"), workers=2)
    a, b = _checksums(tmp_path / "w1"), _checksums(tmp_path / "w2")
    assert a == b and len(a) > 3
    assert (tmp_path / "w1" / "tokenizer.json").read_bytes() == (tmp_path / "w2" / "tokenizer.json").read_bytes()


def test_rerunning_a_finished_recipe_does_no_work(tmp_path, shared_data):
    recipe = small_recipe(_prose(shared_data))
    out = tmp_path / "out"
    run(recipe, output=str(out), workers=1)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "_state" not in p.parts}
    run(recipe, output=str(out), workers=1)
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "_state" not in p.parts}
    changed = [str(p) for p in stamps if after.get(p) != stamps[p] and p.name not in ("plan.json", "recipe.yaml", "manifest.jsonl")]
    assert changed == []


def test_killed_run_resumes_to_identical_shards(tmp_path, shared_data):
    import yaml

    recipe = small_recipe(_prose(shared_data) + [{"name": "code", "path": str(shared_data / "code" / "code.jsonl")}],
                          executor={"task_bytes": 200_000})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ref = tmp_path / "ref"
    run(recipe, output=str(ref), workers=2)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(path), "-o", str(out), "-w", "2", "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "_state" / "shards").glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed mid-stage: " + proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "shard_index.json").exists()
    done_before = len(list((out / "_state" / "shards").glob("*.json")))
    run(recipe, output=str(out), workers=2)
    assert _checksums(out) == _checksums(ref)
    assert done_before >= 2
    assert validate_output(out)[0] == []


def test_shards_have_the_documented_schema_and_load_in_torch(tmp_path, shared_data):
    import torch
    from safetensors.torch import load_file as torch_load

    out = tmp_path / "out"
    run(small_recipe(_prose(shared_data)), output=str(out), workers=1)
    index = orjson.loads((out / "shard_index.json").read_bytes())
    first = out / index["shards"][0]["path"]
    t = load_numpy(str(first))
    assert {k: str(v.dtype) for k, v in t.items()} == {
        "input_ids": "int32", "attention_mask": "int32", "modality_mask": "uint8", "labels": "int32"}
    assert t["input_ids"].shape == (index["shards"][0]["samples"], 128)
    ids, labels = t["input_ids"], t["labels"]
    masked = np.isin(ids, [0, 2])  # PAD and BOS; EOS keeps its label (sharding.mask_special)
    assert np.array_equal(labels[~masked], ids[~masked]) and (ids[~masked] == 3).any()
    assert (labels[masked] == -100).all()
    tt = torch_load(str(first))
    assert tt["input_ids"].dtype == torch.int32 and tt["modality_mask"].dtype == torch.uint8
    assert torch.equal(tt["labels"], torch.from_numpy(labels))
    assert hashlib.sha256(first.read_bytes()).hexdigest() == index["shards"][0]["sha256"]
    assert set(index["splits"]) == {"train", "val", "test"}
    assert index["totals"]["tokens"] == sum(s["tokens"] for s in index["shards"])


def test_validate_reports_a_corrupted_shard(tmp_path, shared_data):
    out = tmp_path / "out"
    run(small_recipe(_prose(shared_data)), output=str(out), workers=1)
    assert validate_output(out)[0] == []
    index = orjson.loads((out / "shard_index.json").read_bytes())
    victim = out / index["shards"][0]["path"]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF
    victim.unlink()  # shards are hard links to the task parts: replace, do not modify in place
    victim.write_bytes(bytes(data))
    faults, _ = validate_output(out)
    assert any("sha256 differs" in f for f in faults)
    res = subprocess.run([sys.executable, "-m", "corpusforge.cli", "validate", str(out)], capture_output=True)
    assert res.returncode == 1


def test_workers_see_the_environment_of_the_run_not_of_the_first_run(tmp_path, shared_data, monkeypatch):
    """Pool workers fork from a forkserver started by the first run of the process; a variable set
    after it (a key, credentials) must still reach the tasks of a later run."""
    source = _prose(shared_data)  # several tasks, so both runs use the process pool
    run(small_recipe(source), output=str(tmp_path / "first"), workers=2)
    monkeypatch.setenv("CORPUSFORGE_TEST_PII_KEY", "k1")
    recipe = small_recipe(source, steps=[{"type": "pii", "mode": "hash", "hash_key_env": "CORPUSFORGE_TEST_PII_KEY"}])
    stats = run(recipe, output=str(tmp_path / "second"), workers=2)
    assert stats["documents"]["kept"] > 0
