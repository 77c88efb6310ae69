"""`corpusforge plan` + `corpusforge run-task`: every task in its own process, in a shuffled order,
gives the bytes `corpusforge run` gives; a finished task is a no-op; unfinished stages, another recipe
or a changed input are refused with one line."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
import yaml

from corpusforge import run
from corpusforge.recipe import Recipe
from corpusforge.schedule import SCHEDULE, plan, run_task
from corpusforge.state import OutputLock
from tests.conftest import small_recipe
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

TIMINGS = ("seconds", "invocation_seconds", "task_seconds", "mb_per_s", "peak_rss_mb")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def _recipe(shared_data: Path, tmp_path: Path) -> Path:
    data = tmp_path / "in"
    data.mkdir()
    for name in ("pg84.txt", "pg1513.txt", "pg1342.txt", "pg2701.txt"):  # four books: four curate tasks
        (data / name).write_bytes((shared_data / "prose" / "gutenberg" / name).read_bytes()[:200_000])
    recipe = small_recipe([{"name": "books", "path": str(data), "text_unit": "paragraph"}],
                          steps=[{"type": "normalize"}, {"type": "minhash_dedup", "num_perm": 32, "bands": 4, "rows": 8}],
                          executor={"task_bytes": 150_000})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _files(out: Path) -> dict[str, bytes]:
    """Every file of an output but its run state, with stats.json's timings removed."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not rel.startswith(("_state/", "_work/")) and rel != "report.html":
            files[rel] = p.read_bytes()
    files["stats.json"] = orjson.dumps(_without_timings(orjson.loads(files["stats.json"])), option=orjson.OPT_SORT_KEYS)
    return files


def _without_timings(x):
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def test_every_task_in_its_own_process_in_shuffled_order_gives_the_bytes_of_a_run(shared_data, tmp_path):
    recipe = _recipe(shared_data, tmp_path)
    out = tmp_path / "fanout"
    res = _cli("plan", str(recipe), "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr
    schedule = orjson.loads(res.stdout)
    assert schedule == orjson.loads((out / SCHEDULE).read_bytes())
    stages = schedule["stages"]
    assert [(s["name"], s["kind"]) for s in stages] == [
        ("curate", "curate"), ("minhash_dedup", "decide"), ("minhash_dedup_finalize", "finalize"),
        ("tokenizer", "tokenizer"), ("shards", "shards"), ("index", "index")]
    assert stages[0]["tasks"] == stages[4]["tasks"] == 4 and stages[0]["after"] == []
    assert all(s["after"] == [prev["name"]] for prev, s in zip(stages, stages[1:], strict=False))
    assert all(s["task_ids"] == list(range(s["tasks"])) for s in stages)

    rng = random.Random(11)
    for s in stages:
        order = list(range(s["tasks"]))
        rng.shuffle(order)
        for t in order:
            res = _cli("run-task", str(recipe), "-o", str(out), "--stage", s["name"], "--task", str(t), "-q")
            assert res.returncode == 0, (s["name"], t, res.stderr)
            assert f"{s['name']} task {t}: done" in res.stdout

    run(yaml.safe_load(recipe.read_text()), output=str(tmp_path / "local"), workers=2, progress=False)
    fanned, local = _files(out), _files(tmp_path / "local")
    assert fanned.keys() == local.keys() and any(k.endswith(".safetensors") for k in local)
    assert [k for k in local if fanned[k] != local[k]] == []

    record = out / "_state" / "shards" / "000002.json"
    before = record.stat().st_mtime_ns
    res = _cli("run-task", str(recipe), "-o", str(out), "--stage", "shards", "--task", "2")
    assert res.returncode == 0 and "shards task 2: already done" in res.stdout
    assert record.stat().st_mtime_ns == before


def test_a_partial_fan_out_is_finished_by_run_with_the_same_bytes(shared_data, tmp_path):
    recipe_path = _recipe(shared_data, tmp_path)
    recipe = Recipe.model_validate(yaml.safe_load(recipe_path.read_text()))
    out = tmp_path / "partial"
    plan(recipe, str(out))
    for t in (3, 0):
        assert run_task(recipe, str(out), "curate", t) == "ran"
    # The scheduler index comes from the environment of a Slurm array or an indexed Job.
    res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "curate", env={"SLURM_ARRAY_TASK_ID": "1"})
    assert res.returncode == 0 and "curate task 1: done" in res.stdout, res.stderr
    assert run_task(recipe, str(out), "curate", 1) == "done"
    run(recipe, output=str(out), workers=2, progress=False)
    run(recipe, output=str(tmp_path / "local"), workers=1, progress=False)
    assert _files(out) == _files(tmp_path / "local")


def test_refusals_are_one_line_and_say_what_to_do(shared_data, tmp_path):
    recipe_path = _recipe(shared_data, tmp_path)
    out = tmp_path / "out"
    res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "curate", "--task", "0")
    assert res.returncode == 2 and "not planned" in res.stderr and "corpusforge plan" in res.stderr
    assert _cli("plan", str(recipe_path), "-o", str(out)).returncode == 0

    res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "shards", "--task", "0")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "stage 'curate' is not finished: 4 of 4 tasks have no completion record (tasks 0, 1, 2, 3)" in res.stderr
    res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "curate", "--task", "9")
    assert res.returncode == 2 and "stage 'curate' has tasks 0-3; there is no task 9" in res.stderr
    res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "dedup", "--task", "0")
    assert res.returncode == 2 and "no stage 'dedup'; the stages are curate, minhash_dedup" in res.stderr
    assert _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "curate").returncode == 2  # no task id

    recipe = yaml.safe_load(recipe_path.read_text())
    with OutputLock(out, "run"):  # a `corpusforge run` of the output on this machine
        res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "curate", "--task", "0")
    assert res.returncode == 1 and "in use by corpusforge run (pid" in res.stderr

    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**recipe, "seed": 8}))
    res = _cli("run-task", str(other), "-o", str(out), "--stage", "curate", "--task", "0")
    assert res.returncode == 1 and "planned with another recipe" in res.stderr

    (tmp_path / "in" / "new.txt").write_text("A paragraph that arrived after the plan was made.\n")
    res = _cli("run-task", str(recipe_path), "-o", str(out), "--stage", "curate", "--task", "0")
    assert res.returncode == 1 and "the input changed since `corpusforge plan` ran" in res.stderr


def test_a_fan_out_over_s3_where_every_task_runs_on_a_fresh_machine(s3_endpoint, shared_data, tmp_path,  # noqa: F811
                                                                     monkeypatch):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    recipe = Recipe.model_validate(yaml.safe_load(_recipe(shared_data, tmp_path).read_text()))
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "planner"))
    stages = plan(recipe, "s3://corpus/out")["stages"]
    assert fs.exists("corpus/out/_state/schedule.json")
    rng = random.Random(5)
    machine = 0
    for s in stages:
        order = list(range(s["tasks"]))
        rng.shuffle(order)
        for t in order:
            machine += 1  # a pod of an indexed Job: nothing on its disk but what the store holds
            monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / f"machine{machine}"))
            assert run_task(recipe, "s3://corpus/out", s["name"], t) == "ran"
    run(recipe, output=str(tmp_path / "local"), workers=1, progress=False)
    local = orjson.loads((tmp_path / "local" / "shard_index.json").read_bytes())
    assert orjson.loads(fs.cat_file("corpus/out/shard_index.json")) == local
    for shard in local["shards"]:
        assert fs.cat_file(f"corpus/out/{shard['path']}") == (tmp_path / "local" / shard["path"]).read_bytes()
    assert fs.exists("corpus/out/README.md") and not [p for p in fs.find("corpus/out") if p.endswith(".lock")]
