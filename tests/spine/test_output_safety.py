"""No data lost, no secret leaked (issue 24): what --fresh and demo -o may delete, one run per
output at a time, the same data in another folder giving the same bytes, and workers that do not
outlive their driver."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import orjson
import yaml

from tests.conftest import small_recipe


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True, cwd=cwd)


def _write_recipe(path, source, **over):
    recipe = small_recipe([{"name": "wiki", "path": str(source), "text_unit": "paragraph"}],
                          steps=[{"type": "normalize"}, {"type": "exact_dedup"}], **over)
    path.write_text(yaml.safe_dump(recipe))
    return path


# -- the same data in another folder -------------------------------------------------------------


def test_the_same_data_in_two_folders_gives_byte_identical_shards_and_equal_versions(shared_data, tmp_path):
    outs = []
    for where in ("first/in", "second/deeper/in"):
        src = tmp_path / where
        (src / "sub").mkdir(parents=True)
        shutil.copy(shared_data / "wikitext-2" / "valid.txt", src / "sub" / "valid.txt")
        shutil.copy(shared_data / "prose" / "tinyshakespeare.txt", src / "tinyshakespeare.txt")
        recipe = _write_recipe(tmp_path / f"{where.replace('/', '_')}.yaml", src)
        out = tmp_path / f"out_{len(outs)}"
        res = _cli("run", str(recipe), "-o", str(out), "-q", "-w", "1")
        assert res.returncode == 0, res.stderr
        outs.append(out)
    a, b = (orjson.loads((o / "shard_index.json").read_bytes()) for o in outs)
    assert [(s["path"], s["sha256"]) for s in a["shards"]] == [(s["path"], s["sha256"]) for s in b["shards"]]
    assert a["recipe_sha256"] == b["recipe_sha256"] and len(a["shards"]) > 3
    for s in a["shards"]:
        assert (outs[0] / s["path"]).read_bytes() == (outs[1] / s["path"]).read_bytes(), s["path"]
    assert (outs[0] / "version.json").read_bytes() == (outs[1] / "version.json").read_bytes()


def test_a_changed_file_in_the_moved_folder_changes_the_version(shared_data, tmp_path):
    versions = []
    for k, text in enumerate(("one paragraph of real words here\n", "another paragraph of other words\n")):
        src = tmp_path / f"in{k}"
        src.mkdir()
        shutil.copy(shared_data / "wikitext-2" / "valid.txt", src / "valid.txt")
        (src / "extra.txt").write_text(text * 20)
        out = tmp_path / f"out{k}"
        assert _cli("run", str(_write_recipe(tmp_path / f"r{k}.yaml", src)), "-o", str(out), "-q", "-w", "1"
                    ).returncode == 0
        versions.append(orjson.loads((out / "version.json").read_bytes()))
    assert versions[0]["recipe_sha256"] == versions[1]["recipe_sha256"]
    assert versions[0]["version"] != versions[1]["version"]
    assert {m["key"] for m in versions[0]["inputs"]} == {"valid.txt", "extra.txt"}


# -- workers die with their driver ----------------------------------------------------------------


def _slow_recipe(tmp_path, shared_data):
    """A recipe over real files whose curate tasks each take a few seconds (small tasks, many of
    them), so the pool is busy when the driver is killed."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        shutil.copy(shared_data / "code" / "code.jsonl", src / f"code{k}.jsonl")
    recipe = small_recipe([{"name": "code", "path": str(src)}],
                          steps=[{"type": "normalize"}, {"type": "minhash_dedup"}],
                          executor={"task_bytes": 2_000_000})
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_killing_the_driver_ends_every_worker_and_the_forkserver(shared_data, tmp_path):
    import psutil

    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "corpusforge.cli", "run", str(_slow_recipe(tmp_path, shared_data)),
                               "-o", str(out), "-q", "-w", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(driver.pid)
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while time.monotonic() < deadline and len(children) < 3:  # the forkserver and two workers
        children = proc.children(recursive=True)
        time.sleep(0.1)
    assert len(children) >= 3, f"the pool did not start: {driver.stderr.read() if driver.poll() is not None else ''}"
    assert not (out / "shard_index.json").exists()  # still working
    driver.send_signal(signal.SIGKILL)  # not reaped yet: a zombie driver must count as dead too
    gone, alive = psutil.wait_procs(children, timeout=5)
    driver.wait()
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    assert _cli("run", str(tmp_path / "slow.yaml"), "-o", str(out), "-q", "-w", "1").returncode == 0
