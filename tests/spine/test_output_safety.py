"""No data lost, no secret leaked (issue 24): what --fresh and demo -o may delete, one run per
output at a time, the same data in another folder giving the same bytes, and workers that do not
outlive their driver."""

from __future__ import annotations

import shutil
import subprocess
import sys

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
