from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from corpusforge import run

from .helpers import write_jsonl


def _recipe(folder: Path, steps: list[dict], task_bytes: int = 1000) -> dict:
    return {"sources": [{"path": str(folder)}], "steps": steps, "tokenizer": {"vocab_size": 500},
            "sharding": {"sequence_length": 64, "splits": {"train": 1.0}},
            "executor": {"task_bytes": task_bytes}}


def _corpus(folder: Path, paragraphs: list[str]) -> list[str]:
    """Four files; paragraphs 0-2 re-appear (upper-cased, edited, truncated) in later files."""
    p = paragraphs
    files = [
        [p[0], p[1], p[2], p[3]],
        [p[4], p[0].upper(), p[5]],
        [p[1] + " And a closing remark.", p[6], p[7]],
        [" ".join(p[2].split()[:-2]), p[8], p[0]],
    ]
    for i, texts in enumerate(files):
        write_jsonl(folder / f"part_{i}.jsonl", [{"text": t} for t in texts])
    return [t for f in files for t in f]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("step", ["minhash_dedup", "simhash_dedup"])
def test_pipeline_removes_planted_duplicates(wiki_paragraphs, tmp_path, step):
    _corpus(tmp_path / "in", wiki_paragraphs)
    steps = [{"type": step}] if step == "minhash_dedup" else [{"type": step, "max_distance": 6}]
    stats = run(_recipe(tmp_path / "in", steps), output=str(tmp_path / "out"), workers=1, progress=False)
    shards = next(s for s in stats["stages"] if s["name"] == "shards")
    assert shards["steps"][0]["drops"] == {"near_duplicate": 4}
    assert stats["documents"]["kept"] == 9
    final = next(s for s in stats["stages"] if s["kind"] == "finalize")
    assert final["result"]["clusters"] == 3 and final["result"]["removed"] == 4


def test_output_is_identical_with_one_or_two_workers(wiki_paragraphs, tmp_path):
    _corpus(tmp_path / "in", wiki_paragraphs)
    recipe = _recipe(tmp_path / "in", [{"type": "minhash_dedup"}])
    run(recipe, output=str(tmp_path / "w1"), workers=1, progress=False)
    run(recipe, output=str(tmp_path / "w2"), workers=2, progress=False)
    # shard_index.json checksums cover safetensors headers, whose metadata key order the spine's
    # writer does not fix (it varies by process), so compare the token tensors themselves.
    one = sorted((tmp_path / "w1").glob("train/*.safetensors"))
    two = sorted((tmp_path / "w2").glob("train/*.safetensors"))
    assert [p.name for p in one] == [p.name for p in two] and one
    for a, b in zip(one, two, strict=True):
        ta, tb = load_file(a), load_file(b)
        assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    audit = Path("_work/minhash_dedup_0/result/clusters.jsonl")
    assert _digest(tmp_path / "w1" / audit) == _digest(tmp_path / "w2" / audit)


def test_incremental_run_removes_duplicates_of_earlier_outputs(wiki_paragraphs, tmp_path):
    p = wiki_paragraphs
    index = tmp_path / "index"
    write_jsonl(tmp_path / "old" / "a.jsonl", [{"text": t} for t in (p[10], p[11], p[10])])
    steps = [{"type": "minhash_dedup", "index_dir": str(index)}]
    first = run(_recipe(tmp_path / "old", steps), output=str(tmp_path / "out1"), workers=1, progress=False)
    assert first["documents"]["kept"] == 2
    write_jsonl(tmp_path / "new" / "b.jsonl", [{"text": t} for t in (p[12], p[11].lower(), p[13], p[12])])
    second = run(_recipe(tmp_path / "new", steps), output=str(tmp_path / "out2"), workers=1, progress=False)
    assert second["documents"]["kept"] == 2  # p[11] was published before; p[12]'s copy goes
    gens = sorted(x.name for x in index.glob("gen_*"))
    assert len(gens) == 2
    # a third run over the same new input sees both earlier generations, removes everything
    third = run(_recipe(tmp_path / "new", steps), output=str(tmp_path / "out3"), workers=1, progress=False)
    assert third["documents"]["kept"] == 0


def test_index_made_with_other_settings_is_refused(wiki_paragraphs, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": wiki_paragraphs[20]}])
    index = str(tmp_path / "index")
    run(_recipe(tmp_path / "in", [{"type": "minhash_dedup", "index_dir": index}]), output=str(tmp_path / "o1"),
        workers=1, progress=False)
    with pytest.raises(ValueError, match="index_dir"):
        run(_recipe(tmp_path / "in", [{"type": "minhash_dedup", "index_dir": index, "ngram": 3}]),
            output=str(tmp_path / "o2"), workers=1, progress=False)


def test_exact_verification_keeps_pairs_below_the_true_jaccard_threshold(wiki_paragraphs, tmp_path):
    p = wiki_paragraphs[30]
    words = p.split()
    near = " ".join(words[: int(len(words) * 0.97)])  # true 5-gram Jaccard ~0.96
    far = " ".join(words[: int(len(words) * 0.85)])  # ~0.82: a duplicate at 0.8, not at 0.9
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": t} for t in (p, near, far)])
    for threshold, kept in ((0.8, 1), (0.9, 2)):
        steps = [{"type": "minhash_dedup", "threshold": threshold, "verify": "exact"}]
        stats = run(_recipe(tmp_path / "in", steps), output=str(tmp_path / f"out{threshold}"), workers=1,
                    progress=False)
        assert stats["documents"]["kept"] == kept


def test_rerun_into_the_same_output_does_not_dedupe_against_its_own_published_index(wiki_paragraphs, tmp_path):
    import shutil

    write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": t} for t in (wiki_paragraphs[40], wiki_paragraphs[41])])
    recipe = _recipe(tmp_path / "in", [{"type": "minhash_dedup", "index_dir": str(tmp_path / "index")}])
    first = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    shutil.rmtree(tmp_path / "out" / "_state")  # forget every finished task: all stages run again
    again = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    assert first["documents"]["kept"] == again["documents"]["kept"] == 2
    assert len(list((tmp_path / "index").glob("gen_*"))) == 1


def test_only_steps_overriding_finalize_get_a_finalize_stage(wiki_paragraphs, tmp_path):
    _corpus(tmp_path / "in", wiki_paragraphs)
    steps = [{"type": "exact_dedup"}, {"type": "minhash_dedup"}]
    stats = run(_recipe(tmp_path / "in", steps), output=str(tmp_path / "out"), workers=1, progress=False)
    assert [(s["name"], s["kind"]) for s in stats["stages"]] == [
        ("curate", "curate"), ("exact_dedup_0", "decide"), ("curate_1", "curate"),
        ("minhash_dedup_1", "decide"), ("minhash_dedup_1_finalize", "finalize"),
        ("tokenizer", "tokenizer"), ("shards", "shards"), ("index", "index")]
    assert stats["documents"]["kept"] == 9
