"""Issue 24, reporting: resumed runs keep their time, re-runs log no duplicate tracker runs, the card
loads with 🤗 Datasets, observe commands take fsspec outputs, a full disk ends in one error line, and
the tokenizer stage shows progress."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from corpusforge import run
from corpusforge.observe.stats import union_seconds
from tests.conftest import small_recipe
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)


def _recipe(shared_data: Path, **over) -> dict:
    return small_recipe([{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg"),
                          "text_unit": "paragraph"}], **over)


def _records(out: Path, stage: str) -> list[dict]:
    return [orjson.loads(p.read_bytes()) for p in sorted((out / "_state" / stage).glob("*.json"))]


def test_union_seconds_counts_overlapping_tasks_once_and_gaps_never():
    assert union_seconds([(0.0, 2.0), (1.0, 3.0), (10.0, 11.0)]) == 3.0 + 1.0
    assert union_seconds([]) == 0.0


def test_a_run_stopped_after_the_tokenizer_then_resumed_reports_the_time_of_every_task(
        shared_data, tmp_path, monkeypatch):
    from corpusforge.stages.shards import ShardsStage

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed in the shard stage")

    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(ShardsStage, "run_task", killed)
        with pytest.raises(KeyboardInterrupt):
            run(_recipe(shared_data), output=str(out), workers=1, progress=False)
    assert not (out / "stats.json").exists() and _records(out, "tokenizer")
    curate = _records(out, "curate")
    curate_seconds = sum(r["timing"][1] - r["timing"][0] for r in curate)
    done_before = [r for d in (out / "_state").iterdir() if d.is_dir() for r in _records(out, d.name)]
    first = sum(r["timing"][1] - r["timing"][0] for r in done_before)
    assert first >= curate_seconds > 0

    stats = run(_recipe(shared_data), output=str(out), workers=1, progress=False)

    by_stage = {s["name"]: s for s in stats["stages"]}
    # One worker: the stage ran its tasks one after another, so its time is their sum.
    assert by_stage["curate"]["seconds"] == pytest.approx(curate_seconds, abs=2e-3)
    assert by_stage["curate"]["task_seconds"] == pytest.approx(curate_seconds, abs=2e-3)
    steps = by_stage["curate"]["steps"]
    assert sum(s["seconds"] for s in steps) == pytest.approx(
        sum(sum(s["seconds"] for s in r["steps"]) for r in curate), abs=1e-4)
    # The whole run: what this invocation took plus what the tasks finished before it took.
    assert stats["seconds"] == pytest.approx(stats["invocation_seconds"] + first, abs=5e-3)
    assert stats["invocation_seconds"] < stats["seconds"]
    assert stats["mb_per_s"] == pytest.approx(stats["input"]["bytes"] / 1e6 / stats["seconds"], rel=1e-2)
    assert orjson.loads((out / "stats.json").read_bytes())["seconds"] == stats["seconds"]


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


def _tracked_recipe(shared_data: Path, *books: str) -> dict:
    return small_recipe([{"name": b.split(".")[0], "path": str(shared_data / "prose" / "gutenberg" / b),
                          "text_unit": "paragraph"} for b in books],
                        tracking={"mlflow": {"enabled": True}, "wandb": {"enabled": True, "mode": "offline"}})


def _mlflow_runs(out: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name("corpusforge").experiment_id])


def test_rerunning_a_finished_output_logs_no_second_mlflow_or_wandb_run(shared_data, tmp_path, offline_wandb):
    out = tmp_path / "out"
    recipe = _tracked_recipe(shared_data, "pg1513.txt")
    run(recipe, output=str(out), workers=1, progress=False)
    (first,) = _mlflow_runs(out)
    (wandb_run,) = (out / "wandb").glob("offline-run-*")

    run(recipe, output=str(out), workers=1, progress=False)

    assert [r.info.run_id for r in _mlflow_runs(out)] == [first.info.run_id]
    assert list((out / "wandb").glob("offline-run-*")) == [wandb_run]


def test_a_rerun_that_changes_the_output_logs_a_new_run(shared_data, tmp_path, offline_wandb):
    out = tmp_path / "out"
    run(_tracked_recipe(shared_data, "pg1513.txt"), output=str(out), workers=1, progress=False)
    run(_tracked_recipe(shared_data, "pg1513.txt", "pg26184.txt"), output=str(out), workers=1, progress=False)

    assert len(_mlflow_runs(out)) == 2
    assert len(list((out / "wandb").glob("offline-run-*"))) == 2


def test_a_tracked_run_deleted_from_the_store_is_logged_again(shared_data, tmp_path, offline_wandb):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "out"
    recipe = _tracked_recipe(shared_data, "pg1513.txt")
    run(recipe, output=str(out), workers=1, progress=False)
    (first,) = _mlflow_runs(out)
    MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}").delete_run(first.info.run_id)

    run(recipe, output=str(out), workers=1, progress=False)

    (again,) = _mlflow_runs(out)
    assert again.info.run_id != first.info.run_id


def _book_output(shared_data: Path, root: Path, name: str, **over) -> Path:
    out = root / name
    recipe = small_recipe([{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg" / "pg1513.txt"),
                            "text_unit": "paragraph"}], **over)
    run(recipe, output=str(out), workers=1, progress=False)
    return out


@pytest.fixture
def load_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return lambda out, *args: datasets.load_dataset(str(out), *args, cache_dir=str(tmp_path / "hf-cache"))


def test_load_dataset_of_an_output_with_documents_gives_the_curated_documents(shared_data, tmp_path, load_dataset):
    out = _book_output(shared_data, tmp_path, "docs", output={"documents": "parquet"})
    kept = orjson.loads((out / "stats.json").read_bytes())["documents"]["kept"]

    ds = load_dataset(out)

    assert list(ds) == ["train"] and ds["train"].num_rows == kept > 0
    assert ds["train"].column_names == ["id", "text", "source", "offset", "metadata"]
    assert orjson.loads(ds["train"][0]["metadata"])["split"] in ("train", "val", "test")


def test_load_dataset_of_jsonl_documents_beside_npy_shards(shared_data, tmp_path, load_dataset):
    out = _book_output(shared_data, tmp_path, "jsonl", output={"documents": "jsonl"}, sharding={"format": "npy"})
    kept = orjson.loads((out / "stats.json").read_bytes())["documents"]["kept"]

    ds = load_dataset(out)

    assert ds["train"].num_rows == kept and "text" in ds["train"].column_names


def test_load_dataset_of_parquet_shards_gives_the_token_rows_of_every_split(shared_data, tmp_path, load_dataset):
    out = _book_output(shared_data, tmp_path, "parquet", sharding={"format": "parquet"})
    index = orjson.loads((out / "shard_index.json").read_bytes())

    ds = load_dataset(out)

    assert {s: d.num_rows for s, d in ds.items()} == {s: v["samples"] for s, v in index["splits"].items()}
    assert ds["train"].column_names == ["input_ids", "attention_mask", "modality_mask", "labels"]
    assert len(ds["train"][0]["input_ids"]) == 128


def test_load_dataset_of_safetensors_shards_alone_gives_their_lineage(shared_data, tmp_path, load_dataset):
    import pyarrow.parquet as pq

    out = _book_output(shared_data, tmp_path, "plain")
    lines = {s.name: sum(pq.read_metadata(p).num_rows for p in s.glob("*.parquet")) for s in (out / "lineage").iterdir()}

    ds = load_dataset(out)

    assert {s: d.num_rows for s, d in ds.items()} == lines
    assert ds["train"].column_names[:4] == ["shard", "row", "token_start", "token_end"]
    assert "doc_id" in ds["train"].column_names


S3_OUT = "s3://corpus/out"


@pytest.fixture
def s3_output(s3_endpoint, shared_data, tmp_path, monkeypatch):  # noqa: F811
    """A run whose output is on a real S3 endpoint (moto on 127.0.0.1); yields the store and the recipe."""
    import s3fs

    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    recipe = small_recipe([{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg" / "pg1513.txt"),
                            "text_unit": "paragraph"}], output={"documents": "parquet"})
    run(recipe, output=S3_OUT, workers=1, progress=False)
    return fs


def _cli(*args: str):
    from click.testing import CliRunner

    from corpusforge.cli import main

    return CliRunner().invoke(main, list(args))


def _store_copy(fs, dest: Path) -> Path:
    fs.get("corpus/out", str(dest), recursive=True)
    return dest


def test_trace_and_diff_read_an_s3_output_as_they_read_its_copy(s3_output, tmp_path):
    local = _store_copy(s3_output, tmp_path / "copy")
    shard = "train/shard_00000.safetensors"

    remote_rows = _cli("trace", S3_OUT, "--shard", shard, "--row", "0", "--json")
    local_rows = _cli("trace", str(local), "--shard", shard, "--row", "0", "--json")
    doc_id = orjson.loads(local_rows.output.splitlines()[0])["doc_id"]
    remote_doc = _cli("trace", S3_OUT, "--doc-id", doc_id)
    same = _cli("diff", S3_OUT, str(local))

    assert remote_rows.exit_code == 0 and remote_rows.output == local_rows.output != ""
    assert remote_doc.exit_code == 0 and remote_doc.output == _cli("trace", str(local), "--doc-id", doc_id).output
    assert same.exit_code == 0 and same.output.startswith("identical: version")


def test_trace_of_a_missing_s3_output_is_one_error_naming_the_url(s3_output):
    result = _cli("trace", "s3://corpus/nothing", "--doc-id", "x")
    assert result.exit_code == 2
    assert "s3://corpus/nothing: no such output" in result.output


def test_erase_on_an_s3_output_rewrites_the_store_from_a_machine_without_a_mirror(s3_output, tmp_path, monkeypatch):
    from corpusforge.shards.validate import validate_output

    fs = s3_output
    before = orjson.loads(fs.cat_file("corpus/out/version.json"))["version"]
    row = _cli("trace", S3_OUT, "--shard", "train/shard_00000.safetensors", "--row", "0", "--json")
    doc_id = orjson.loads(row.output.splitlines()[0])["doc_id"]
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "another-machine"))

    result = _cli("erase", S3_OUT, "--doc-id", doc_id)

    assert result.exit_code == 0, result.output
    assert orjson.loads(fs.cat_file("corpus/out/version.json"))["version"] != before
    (record,) = [orjson.loads(line) for line in fs.cat_file("corpus/out/audit/erasures.jsonl").splitlines()]
    assert record["documents"] == [doc_id] and record["version_after"] != before
    assert validate_output(S3_OUT)[0] == []
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))  # the machine that ran it: stale mirror
    gone = _cli("trace", S3_OUT, "--doc-id", doc_id)
    assert gone.exit_code == 1 and "no shard row holds document" in gone.output
    import pyarrow.parquet as pq

    local = _store_copy(fs, tmp_path / "after")
    kept = {i for p in (local / "documents").glob("*.parquet") for i in pq.read_table(p)["id"].to_pylist()}
    assert kept and doc_id not in kept


def test_card_on_an_s3_output_writes_the_card_and_report_back_to_the_store(s3_output, tmp_path):
    fs = s3_output
    card = fs.cat_file("corpus/out/README.md")
    fs.rm_file("corpus/out/README.md")
    fs.rm_file("corpus/out/report.html")

    result = _cli("card", S3_OUT)

    assert result.exit_code == 0, result.output
    assert f"card:   {S3_OUT}/README.md" in result.output
    assert fs.cat_file("corpus/out/README.md") == card and fs.exists("corpus/out/report.html")


_FAILING_WRITES = '''
import errno, multiprocessing, os
import pyarrow.parquet as pq

_write = pq.ParquetWriter.write_table


def write_table(self, *args, **kwargs):
    if multiprocessing.current_process().name != "MainProcess":  # only in the pool's workers
        code = getattr(errno, os.environ["CF_TEST_ERRNO"])
        raise OSError(code, f"[Errno {code}] Error writing bytes to file. Detail: {os.strerror(code)}")
    return _write(self, *args, **kwargs)


pq.ParquetWriter.write_table = write_table
'''


def _cli_run(recipe: dict, out: str, tmp_path: Path, *flags: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(path), "-o", out, *flags],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "300", **(env or {})})


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(("code", "reason"), [("ENOSPC", "No space left on device"),
                                              ("EDQUOT", "Disk quota exceeded"),
                                              ("EROFS", "Read-only file system"),
                                              ("EACCES", "Permission denied")])
def test_a_storage_error_in_a_worker_ends_the_run_with_one_line_and_exit_1(shared_data, tmp_path, code, reason):
    import os

    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_FAILING_WRITES)
    out = tmp_path / "out"
    recipe = _recipe(shared_data, executor={"task_bytes": 300_000})
    result = _cli_run(recipe, str(out), tmp_path, "-w", "2",  # the progress bar on: it must leave no line
                      env={"PYTHONPATH": os.pathsep.join([str(shim), *os.environ.get("PYTHONPATH", "").split(
                          os.pathsep)]), "CF_TEST_ERRNO": code})

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"error: {out}: {reason} ({code}")


def test_a_full_disk_ends_the_run_with_one_line_naming_the_output(shared_data, tmp_path):
    import subprocess

    disk = tmp_path / "tiny"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a 1 MB tmpfs needs root")
    try:
        out = disk / "out"
        result = _cli_run(_recipe(shared_data, executor={"task_bytes": 300_000}, output={"documents": "parquet"}),
                          str(out), tmp_path, "-w", "2", "-q")
    finally:
        subprocess.run(["umount", str(disk)], check=True)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"error: {out}") and "No space left on device (ENOSPC" in line


def test_the_tokenizer_stage_shows_the_characters_of_its_sample(shared_data, tmp_path):
    import io

    from rich.console import Console

    from corpusforge.recipe import load_recipe
    from corpusforge.runner import run as run_recipe

    shown = io.StringIO()
    run_recipe(load_recipe(_recipe(shared_data)), tmp_path / "out", workers=1, console=Console(file=shown, width=200))
    stats = orjson.loads((tmp_path / "out" / "stats.json").read_bytes())

    (line,) = [ln for ln in shown.getvalue().splitlines() if ln.startswith("tokenizer")]
    # At the end the bar is full at what was read: the curated text less the exact duplicates.
    curated = next(s for s in stats["stages"] if s["name"] == "curate")["steps"][-1]["chars_out"] / 1e6
    m = re.search(r" (\d+\.\d)/(\d+\.\d) M chars ", line)
    assert m and m.group(1) == m.group(2) and 0.5 * curated < float(m.group(1)) <= curated


def test_the_sample_is_counted_as_read_then_the_training_phase_shows(tmp_path):
    from rich.console import Console

    from corpusforge.observe.progress import CHARS, StageProgress, counted_texts

    bar = StageProgress(Console(file=(tmp_path / "bar.txt").open("w")))
    task = bar.add_task("tokenizer", total=9, **{CHARS: True})
    texts = counted_texts(["abc", "defgh"], bar, task, "tokenizer (training)")
    assert next(texts) == "abc" and bar.tasks[0].completed == 3 and bar.tasks[0].description == "tokenizer"
    assert list(texts) == ["defgh"]
    assert bar.tasks[0].completed == 8 and bar.tasks[0].description == "tokenizer (training)"
    assert bar.tasks[0].total is None  # a pulsing bar: the trainer reports nothing while it works


def test_quiet_runs_show_no_progress(shared_data, tmp_path):
    result = _cli_run(_recipe(shared_data), str(tmp_path / "out"), tmp_path, "-w", "1", "-q")
    assert result.returncode == 0, result.stderr
    assert "tokenizer" not in result.stderr and "curate" not in result.stderr
