"""A run survives kill -9 at any moment, a full disk and a second run on its output.

Writes are atomic and tasks leave completion records, so a run killed or stopped by ENOSPC
resumes to the bytes an uninterrupted run writes; ``_state/lock`` keeps a second run out and dies
with its process.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

from corpusforge import run
from corpusforge.shards.validate import validate_output
from corpusforge.state import is_temporary
from tests.conftest import REPO, small_recipe


def _recipe(shared_data: Path) -> dict:
    return small_recipe([
        {"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"},
        {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph"},
    ], executor={"task_bytes": 200_000})


def shard_bytes(out: Path) -> dict[str, bytes]:
    """Every shard file and the index, by path relative to ``out``."""
    index = orjson.loads((out / "shard_index.json").read_bytes())
    files = {s["path"]: (out / s["path"]).read_bytes() for s in index["shards"]}
    return {"shard_index.json": (out / "shard_index.json").read_bytes(), **files}


def _records(out: Path) -> int:
    return sum(1 for _ in (out / "_state").glob("*/*.json")) if (out / "_state").exists() else 0


def kill_and_resume(recipe_path: Path, out: Path, kills: int, workers: int, seed: int = 0,
                    timeout: float = 600) -> list[float]:
    """Start ``corpusforge run`` and SIGKILL its whole process group ``kills`` times, each once a
    new task has finished and then a random 0-0.3 s later (fewer, if a run finishes first); then
    let a last run finish. Returns the seconds into each run at which it was killed."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(recipe_path), "-o", str(out), "-w", str(workers), "-q"]
    moments = []
    for _ in range(kills):
        before = _records(out)
        started = time.time()
        proc = subprocess.Popen(cmd, start_new_session=True, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        while proc.poll() is None and _records(out) <= before and time.time() - started < timeout:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is not None:  # the last tasks went faster than the kill: the run is whole
            assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        moments.append(round(time.time() - started, 2))
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return moments


def test_five_kill_9s_at_random_moments_then_resume_give_the_bytes_of_an_uninterrupted_run(shared_data, tmp_path):
    recipe = _recipe(shared_data)
    run(recipe, output=str(tmp_path / "ref"), workers=2, progress=False)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    moments = kill_and_resume(path, tmp_path / "killed", kills=5, workers=2, seed=19)
    assert len(moments) >= 3, moments
    assert shard_bytes(tmp_path / "killed") == shard_bytes(tmp_path / "ref")
    assert validate_output(tmp_path / "killed")[0] == []


def test_a_killed_run_leaves_no_lock_behind_and_a_second_run_at_once_is_refused(shared_data, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(shared_data)))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(path), "-o", str(out), "-w", "2", "-q"]
    first = subprocess.Popen(cmd, start_new_session=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "_state" / "plan.json").exists() and time.time() < deadline:
        time.sleep(0.02)
    second = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert second.returncode == 1
    [line] = second.stderr.decode().strip().splitlines()
    assert f"{out}: in use by corpusforge run (pid {first.pid}" in line
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    again = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr.decode()[-2000:]


def _no_temporaries(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if is_temporary(p.name)]


def test_a_full_disk_stops_the_run_with_one_error_and_resumes_to_identical_bytes(shared_data, tmp_path, monkeypatch):
    """ENOSPC injected where the atomic writer makes a file durable (fsync), from the third shard
    file on: the run stops with that OSError (the command line makes it one line: see
    tests/observe/test_reporting_fixes.py), no temporary or half-written file stays, and once the
    disk has space again the same run finishes with the bytes of a run that never failed."""
    recipe = _recipe(shared_data)
    run(recipe, output=str(tmp_path / "ref"), workers=1, progress=False)
    real_fsync = os.fsync
    seen: list[str] = []

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if "/_work/shards/" in target:
            seen.append(target)
            if len(seen) > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    out = tmp_path / "out"
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as raised:
        run(recipe, output=str(out), workers=1, progress=False)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert len(seen) == 3 and _no_temporaries(out) == []
    assert not (out / "shard_index.json").exists()
    run(recipe, output=str(out), workers=1, progress=False)
    assert shard_bytes(out) == shard_bytes(tmp_path / "ref")


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_a_real_full_tmpfs_stops_the_cli_with_one_line_and_resumes_once_it_grows(shared_data, tmp_path):
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected ENOSPC test covers the writer")
    try:
        recipe = _recipe(shared_data)
        run(recipe, output=str(tmp_path / "ref"), workers=2, progress=False)
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(path), "-o", str(small / "out"), "-w", "2", "-q"]
        full = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        assert full.returncode == 1
        [line] = full.stderr.decode().strip().splitlines()
        assert line.startswith(f"error: {small / 'out'}") and "No space left on device (ENOSPC" in line
        assert line.endswith("free space and run again to resume")
        assert _no_temporaries(small / "out") == [] and not (small / "out" / "shard_index.json").exists()
        subprocess.run(["mount", "-o", "remount,size=200m", str(small)], check=True)
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert shard_bytes(small / "out") == shard_bytes(tmp_path / "ref")
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
