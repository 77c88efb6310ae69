from pathlib import Path

import orjson
import pytest
import xxhash

from corpusforge import run
from corpusforge.document import Document
from corpusforge.errors import RecipeError
from corpusforge.models.perplexity import Perplexity
from corpusforge.models.top_fraction import KeepTopFraction, keep_count
from corpusforge.observe.stats import TaskContext
from corpusforge.recipe import Recipe

WORDS = [f"w{i}" for i in range(10)]


@pytest.fixture
def unigram_arpa(tmp_path) -> Path:
    """A unigram model in which w0 is the likeliest word and w9 the least: perplexity rises with i."""
    lines = ["\\data\\", f"ngram 1={len(WORDS) + 3}", "", "\\1-grams:", "-99\t<s>", "-0.5\t</s>", "-5.0\t<unk>"]
    lines += [f"-{0.1 * (i + 1):.1f}\t{w}" for i, w in enumerate(WORDS)]
    path = tmp_path / "unigram.arpa"
    path.write_text("\n".join([*lines, "", "\\end\\", ""]), encoding="utf-8")
    return path


def run_corpus_step(step: KeepTopFraction, tasks: list[list[Document]], stage_dir: Path) -> dict[int, dict[int, str]]:
    """The pipeline's calls in this process: score every task, decide once, then ask each task's removals."""
    step.bind(stage_dir)
    for t, docs in enumerate(tasks):
        ctx = TaskContext("curate", t, stage_dir)
        step.setup(ctx)
        assert [d.id for d in step(iter(docs), ctx)] == [d.id for d in docs]
    step.decide(0, len(tasks))
    return {t: step.removed(t) for t in range(len(tasks))}


def test_keep_count_rounds_before_ceiling():
    assert keep_count(0.3, 10) == 3  # 0.3 * 10 is 3.0000000000000004 in floating point
    assert keep_count(0.25, 7) == 2 and keep_count(1.0, 7) == 7 and keep_count(0.01, 0) == 0


def test_keep_top_fraction_makes_the_step_corpus_wide_and_excludes_thresholds(unigram_arpa):
    step = Perplexity(model_path=str(unigram_arpa), keep_top_fraction=0.3)
    assert isinstance(step, KeepTopFraction) and step.name == "perplexity" and step.fraction == 0.3
    assert isinstance(Perplexity(model_path=str(unigram_arpa)), Perplexity)
    with pytest.raises(ValueError, match="alternative to max_perplexity"):
        Perplexity(model_path=str(unigram_arpa), max_perplexity=10.0, keep_top_fraction=0.3)
    with pytest.raises(RecipeError, match=r"steps\[0\].*\(0, 1\]"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [
            {"type": "perplexity", "model_path": str(unigram_arpa), "keep_top_fraction": 1.5}]})


def test_lowest_perplexities_are_kept_and_ties_at_the_cut_go_by_id_hash(unigram_arpa, tmp_path):
    # 20 documents over 3 tasks, each word twice: keeping 25% keeps 5 = w0 x2, w1 x2 and one of the w2s.
    docs = [Document(WORDS[j % 10], id=f"d{j:02d}", source="mem") for j in range(20)]
    tasks = [docs[0:7], docs[7:15], docs[15:20]]
    step = Perplexity(model_path=str(unigram_arpa), keep_top_fraction=0.25)
    removed = run_corpus_step(step, tasks, tmp_path / "stage")
    kept = [d for t, ds in enumerate(tasks) for r, d in enumerate(ds) if r not in removed[t]]
    w2 = sorted((d for d in docs if d.text == "w2"), key=lambda d: xxhash.xxh3_64_intdigest(d.id.encode()))
    assert sorted(d.id for d in kept) == sorted(["d00", "d10", "d01", "d11", w2[0].id])
    assert all(set(r.values()) == {"below_top_fraction"} for r in removed.values())
    assert sum(map(len, removed.values())) == 15
    assert all(d.metadata["perplexity"] > 0 for d in docs)  # every document still carries its score


def test_kept_set_is_the_same_whatever_the_task_split(unigram_arpa, tmp_path):
    docs = [Document(WORDS[j % 10], id=f"d{j:02d}", source="mem") for j in range(20)]
    kept = []
    for name, cuts in (("one", [20]), ("four", [3, 9, 10, 20])):
        tasks, start = [], 0
        for end in cuts:
            tasks.append([Document(d.text, d.id, d.source) for d in docs[start:end]])
            start = end
        removed = run_corpus_step(Perplexity(model_path=str(unigram_arpa), keep_top_fraction=0.35), tasks,
                                  tmp_path / name)
        kept.append(sorted(d.id for t, ds in enumerate(tasks) for r, d in enumerate(ds) if r not in removed[t]))
    assert kept[0] == kept[1] and len(kept[0]) == 7


def test_pipeline_keeps_the_top_fraction_of_the_whole_run(unigram_arpa, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for f in range(4):  # four files, one task each: the cut-off must be corpus-wide, not per file
        rows = [{"text": " ".join([WORDS[(3 * f + j) % 10]] * 3)} for j in range(5)]
        (src / f"part_{f}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    recipe = {"sources": [{"path": str(src)}], "tokenizer": {"vocab_size": 300},
              "steps": [{"type": "perplexity", "model_path": str(unigram_arpa), "keep_top_fraction": 0.3}],
              "sharding": {"sequence_length": 16, "splits": {"train": 1.0}}, "output": {"documents": "jsonl"},
              "executor": {"task_bytes": 1000}}
    stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    decide = next(s for s in stats["stages"] if s["kind"] == "decide")
    assert decide["name"] == "perplexity" and decide["result"]["kept"] == 6
    out = [orjson.loads(line) for p in sorted((tmp_path / "out" / "documents").glob("*.jsonl"))
           for line in p.read_bytes().splitlines()]
    scores = sorted(d["metadata"]["perplexity"] for d in out)
    every = sorted(Perplexity(model_path=str(unigram_arpa)).scores(
        [Document(" ".join([WORDS[(3 * f + j) % 10]] * 3), "x", "m") for f in range(4) for j in range(5)]))
    assert scores == pytest.approx(every[:6], abs=1e-3)
    assert stats["documents"]["kept"] == 6
