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
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True, cwd=cwd)


def _write_recipe(path, source, **over):
    recipe = small_recipe([{"name": "wiki", "path": str(source), "text_unit": "paragraph"}],
                          steps=[{"type": "normalize"}, {"type": "exact_dedup"}], **over)
    path.write_text(yaml.safe_dump(recipe))
    return path


# -- what --fresh and demo -o may delete ---------------------------------------------------------


def _small(tmp_path, shared_data, name="r.yaml", **over):
    src = tmp_path / "in"
    if not src.exists():
        src.mkdir()
        shutil.copy(shared_data / "prose" / "gutenberg" / "pg26184.txt", src / "pg26184.txt")
    return _write_recipe(tmp_path / name, src, **over)


def _thesis(tmp_path):
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "README.md").write_text("my thesis\n")
    (folder / "chapters" / "one.tex").write_text("\\chapter{One}\n")
    return folder


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _one_line_error(res):
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_fresh_refuses_a_folder_that_is_not_a_corpusforge_output_and_leaves_it_untouched(shared_data, tmp_path):
    thesis = _thesis(tmp_path)
    before = _files(thesis)
    res = _cli("run", str(_small(tmp_path, shared_data)), "-o", str(thesis), "--fresh", "-q")
    assert res.returncode == 1
    assert _one_line_error(res) == (f"error: {thesis}: not a corpusforge output (no _state/output.json), refusing "
                                    "to delete it; delete it yourself or choose another output")
    assert _files(thesis) == before


def test_a_run_refuses_to_write_into_a_folder_holding_a_users_files(shared_data, tmp_path):
    thesis = _thesis(tmp_path)
    before = _files(thesis)
    res = _cli("run", str(_small(tmp_path, shared_data)), "-o", str(thesis), "-q")
    assert res.returncode == 1
    assert _one_line_error(res) == (f"error: {thesis}: not empty and not a corpusforge output (no "
                                    "_state/output.json), refusing to write into it; choose an empty or new folder")
    assert _files(thesis) == before and (thesis / "README.md").read_text() == "my thesis\n"


def test_demo_refuses_an_output_folder_that_is_not_a_corpusforge_output(tmp_path):
    thesis = _thesis(tmp_path)
    before = _files(thesis)
    res = _cli("demo", "-o", str(thesis), "-q")
    assert res.returncode == 1 and "not a corpusforge output" in _one_line_error(res)
    assert _files(thesis) == before


def test_fresh_refuses_an_output_that_also_holds_a_users_file_and_deletes_nothing(shared_data, tmp_path):
    recipe, out = _small(tmp_path, shared_data), tmp_path / "out"
    assert _cli("run", str(recipe), "-o", str(out), "-q", "-w", "1").returncode == 0
    (out / "notes.txt").write_text("mine\n")
    before = _files(out)
    res = _cli("run", str(recipe), "-o", str(out), "--fresh", "-q")
    assert res.returncode == 1
    assert _one_line_error(res) == (f"error: {out}: holds files corpusforge did not write (notes.txt), refusing "
                                    "to delete it; move them out or choose another output")
    assert _files(out) == before


def test_fresh_replaces_a_finished_output_and_accepts_an_empty_or_missing_folder(shared_data, tmp_path):
    recipe = _small(tmp_path, shared_data)
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "missing", tmp_path / "empty"):  # the last: a finished output
        res = _cli("run", str(recipe), "-o", str(out), "--fresh", "-q", "-w", "1")
        assert res.returncode == 0, res.stderr
        assert _cli("validate", str(out)).returncode == 0


def test_a_run_cut_short_before_its_first_task_leaves_a_marker_that_fresh_recognises(shared_data, tmp_path):
    out = tmp_path / "out"
    recipe = _small(tmp_path, shared_data)
    broken = yaml.safe_load(recipe.read_text())
    broken["sources"][0]["include"] = ["*.md"]  # valid, but the plan finds no input: the run stops at once
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    res = _cli("run", str(tmp_path / "broken.yaml"), "-o", str(out), "-q")
    assert res.returncode == 2 and "no input files" in res.stderr
    assert orjson.loads((out / "_state" / "output.json").read_bytes())["fingerprint"]
    res = _cli("run", str(recipe), "-o", str(out), "--fresh", "-q", "-w", "1")
    assert res.returncode == 0, res.stderr


def test_fresh_refuses_a_store_prefix_without_a_corpusforge_marker_and_keeps_its_objects(
        s3_endpoint, shared_data, tmp_path, monkeypatch):  # noqa: F811
    import s3fs
    from click.testing import CliRunner

    from corpusforge.cli import main

    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    fs.pipe("corpus/papers/thesis.tex", b"\\chapter{One}\n")
    result = CliRunner().invoke(main, ["run", str(_small(tmp_path, shared_data)), "-o", "s3://corpus/papers",
                                       "--fresh", "-q", "-w", "1"])
    assert result.exit_code == 1
    assert "s3://corpus/papers: not a corpusforge output (no _state/output.json), refusing to delete it" in result.output
    assert fs.cat_file("corpus/papers/thesis.tex") == b"\\chapter{One}\n"


def test_another_recipe_on_a_store_output_removes_the_old_splits_from_the_store(
        s3_endpoint, shared_data, tmp_path, monkeypatch):  # noqa: F811
    import s3fs

    from corpusforge import run

    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    first = yaml.safe_load(_small(tmp_path, shared_data).read_text())
    run(first, output="s3://corpus/out", workers=1)
    assert fs.exists("corpus/out/val")
    run({**first, "sharding": {**first["sharding"], "splits": {"train": 1.0}}}, output="s3://corpus/out", workers=1)
    fs.invalidate_cache()
    assert not [p for p in fs.find("corpus/out") if p.startswith(("corpus/out/val/", "corpus/out/test/"))]
    assert sorted(orjson.loads(fs.cat_file("corpus/out/shard_index.json"))["splits"]) == ["train"]


# -- one run per output at a time, one recipe per output ----------------------------------------------


def test_a_run_on_an_output_another_process_holds_fails_at_once_naming_the_holder(shared_data, tmp_path):
    import os
    import socket

    from corpusforge.state import OutputLock

    out = tmp_path / "out"
    with OutputLock(out):
        res = _cli("run", str(_small(tmp_path, shared_data)), "-o", str(out), "-q")
    assert res.returncode == 1
    line = _one_line_error(res)
    assert line.startswith(f"error: {out}: in use by corpusforge run (pid {os.getpid()} on {socket.gethostname()}, "
                           "started 20") and line.endswith("; wait for it to end or choose another output")
    assert sorted(p.name for p in (out / "_state").iterdir()) == ["lock"]  # nothing written


def test_two_recipes_run_at_once_on_one_output_the_second_fails_and_the_first_finishes(shared_data, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "corpusforge.cli", "run", str(_slow_recipe(tmp_path, shared_data)),
                              "-o", str(out), "-q", "-w", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "_state" / "output.json").exists():
        time.sleep(0.05)
    second = _cli("run", str(_small(tmp_path, shared_data, seed=8)), "-o", str(out), "-q")
    assert first.poll() is None, "the first run ended before the second started"
    assert second.returncode == 1 and f"pid {first.pid} " in _one_line_error(second)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    slow = orjson.loads((out / "_state" / "output.json").read_bytes())["fingerprint"]
    assert orjson.loads((out / "shard_index.json").read_bytes())["recipe_sha256"] == slow


def test_another_recipe_on_a_finished_output_replaces_what_the_first_published(shared_data, tmp_path):
    out = tmp_path / "out"
    first = _small(tmp_path, shared_data, output={"documents": "jsonl"})
    assert _cli("run", str(first), "-o", str(out), "-q", "-w", "1").returncode == 0
    assert (out / "val").is_dir() and (out / "documents").is_dir() and (out / "lineage" / "val").is_dir()
    (out / "notes.txt").write_text("mine\n")
    other = _small(tmp_path, shared_data, "other.yaml", sharding={"splits": {"train": 1.0}})
    res = _cli("run", str(other), "-o", str(out), "-q", "-w", "1")
    assert res.returncode == 0, res.stderr
    assert "was written by another recipe" in res.stderr
    index = orjson.loads((out / "shard_index.json").read_bytes())
    assert sorted(index["splits"]) == ["train"] and sorted(p.name for p in (out / "lineage").iterdir()) == ["train"]
    assert not any((out / name).exists() for name in ("val", "test", "documents"))
    assert (out / "notes.txt").read_text() == "mine\n"
    assert _cli("validate", str(out)).returncode == 0
    version = orjson.loads((out / "version.json").read_bytes())
    assert version["recipe_sha256"] == index["recipe_sha256"] == orjson.loads(
        (out / "_state" / "output.json").read_bytes())["fingerprint"]


def test_a_changed_worker_count_or_tracking_section_resumes_the_same_output(shared_data, tmp_path):
    out = tmp_path / "out"
    assert _cli("run", str(_small(tmp_path, shared_data)), "-o", str(out), "-q", "-w", "1").returncode == 0
    card = _small(tmp_path, shared_data, "card.yaml", card={"description": "same data, other words"})
    res = _cli("run", str(card), "-o", str(out), "-q", "-w", "2")
    assert res.returncode == 0, res.stderr


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


def test_erase_and_card_fail_while_a_run_holds_the_output_and_change_nothing(shared_data, tmp_path):
    from corpusforge.state import OutputLock

    out = tmp_path / "out"
    assert _cli("run", str(_small(tmp_path, shared_data)), "-o", str(out), "-q", "-w", "1").returncode == 0
    version = (out / "version.json").read_bytes()
    with OutputLock(out):
        for args in (("erase", str(out), "--match", "the"), ("card", str(out))):
            res = _cli(*args)
            assert res.returncode == 2 and f"{out}: in use by corpusforge run (pid" in res.stderr, res.stderr
    assert (out / "version.json").read_bytes() == version
    assert _cli("card", str(out)).returncode == 0


def test_a_folder_holding_only_a_gitkeep_is_written_into_and_fresh_keeps_the_placeholder(shared_data, tmp_path):
    recipe = _small(tmp_path, shared_data)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".gitkeep").write_text("")
    assert _cli("run", str(recipe), "-o", str(out), "-q", "-w", "1").returncode == 0
    assert (out / "shard_index.json").exists()
    res = _cli("run", str(recipe), "-o", str(out), "-q", "-w", "1", "--fresh")
    assert res.returncode == 0, res.stderr
    assert (out / ".gitkeep").exists() and (out / "shard_index.json").exists()


def test_a_lock_file_alone_does_not_make_a_folder_of_user_files_an_output(shared_data, tmp_path):
    recipe = _small(tmp_path, shared_data)
    folder = _thesis(tmp_path)
    (folder / "_state").mkdir()
    (folder / "_state" / "lock").write_text("")
    before = _files(folder)
    res = _cli("run", str(recipe), "-o", str(folder), "-q", "-w", "1")
    assert res.returncode == 1 and "not a corpusforge output" in _one_line_error(res)
    assert _files(folder) == before
