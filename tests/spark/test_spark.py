"""The Spark executor (``executor.kind: spark``) on ``local[2]``: the bytes of a local run, a Python
worker killed mid-task retried by Spark to the same output, and a recipe's steps applied to a DataFrame."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from corpusforge import run
from tests.conftest import small_recipe

pytest.importorskip("pyspark")


def _recipe(shared_data: Path) -> dict:
    return small_recipe([{"name": "books", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"}],
                        steps=[{"type": "normalize"}, {"type": "gopher_repetition"},
                               {"type": "minhash_dedup", "num_perm": 32, "bands": 4, "rows": 8}],
                        executor={"task_bytes": 700_000})


def _outputs(out: Path) -> dict[str, bytes]:
    """The files a trainer and an auditor read: shards, index, tokenizer, lineage, documents."""
    keep = ("train/", "val/", "test/", "lineage/", "shard_index.json", "tokenizer.json", "manifest")
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).as_posix().startswith(keep)}


@pytest.fixture(scope="module")
def local_output(shared_data, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("local") / "out"
    run(_recipe(shared_data), output=str(out), workers=1)
    return _outputs(out)


def test_spark_local_2_gives_the_bytes_of_the_local_executor(shared_data, local_output, tmp_path):
    out = tmp_path / "spark"
    stats = run(_recipe(shared_data), output=str(out), executor="spark", address="local[2]")
    assert stats["documents"]["kept"] > 1000 and [s["tasks"] for s in stats["stages"]][0] >= 3
    got = _outputs(out)
    assert got.keys() == local_output.keys() and any(k.endswith(".safetensors") for k in got)
    assert [k for k in got if got[k] != local_output[k]] == []


def _python_workers(driver: int) -> list[psutil.Process]:
    """Spark's forked Python workers under ``driver`` (children of the pyspark.daemon process)."""
    found = []
    for p in psutil.Process(driver).children(recursive=True):
        try:
            if "pyspark.daemon" in " ".join(p.cmdline()) and p.parent() and "pyspark.daemon" in " ".join(
                    p.parent().cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


def test_a_python_worker_killed_mid_task_is_retried_by_spark_to_the_same_output(shared_data, local_output, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**_recipe(shared_data), "executor": {"kind": "spark", "address": "local[2]",
                                                                          "task_bytes": 700_000}}))
    out = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, "-m", "corpusforge.cli", "run", str(recipe), "-o", str(out), "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and driver.poll() is None and time.monotonic() < deadline:
        for p in _python_workers(driver.pid):
            try:
                p.kill()
                killed = p.pid
                break
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.01)
    log = driver.communicate(timeout=300)[0].decode(errors="replace")
    assert killed is not None, f"no Python worker was seen; driver said:\n{log}"
    assert driver.returncode == 0, log
    assert _outputs(out) == local_output
