"""The local mirror of an s3:// output is this user's alone, and only files a run here recorded are
uploaded from it: another local user cannot pre-fill it and have the run push their files into the
store with our credentials (moto S3 on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile

import pytest
import yaml
from click.testing import CliRunner

from corpusforge import run
from corpusforge.cli import main
from corpusforge.errors import CorpusforgeError
from corpusforge.remote import LEDGER, RemoteOutput, mirror_dir
from corpusforge.shards.validate import validate_output
from tests.conftest import small_recipe
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

OUT = "s3://corpus/out"
OTHER_UID = 65534  # nobody
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another uid needs root")


@pytest.fixture
def tmpdir_here(tmp_path, monkeypatch):
    """The system temp folder is ``tmp_path/tmp`` (sticky and world-writable, as /tmp is); no override."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.delenv("CORPUSFORGE_MIRROR_DIR", raising=False)
    return tmp


def _hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _recipe(shared_data, tmp_path):
    text = (shared_data / "wikitext-2" / "valid.txt").read_text()[:60_000]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "valid.txt").write_text(text)
    return small_recipe([{"name": "wiki", "path": str(tmp_path / "in"), "text_unit": "paragraph"}])


def _bucket():
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    return fs


def test_the_default_mirror_is_a_private_folder_per_user(tmpdir_here):
    path = mirror_dir(OUT)
    assert path == tmpdir_here / f"corpusforge-mirror-{os.geteuid()}" / _hash(OUT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert mirror_dir(OUT) == path  # checked again, and accepted, on every use


@needs_root
def test_a_mirror_folder_owned_by_another_user_is_refused(tmpdir_here):
    root = tmpdir_here / f"corpusforge-mirror-{os.geteuid()}"
    root.mkdir(mode=0o700)
    os.chown(root, OTHER_UID, OTHER_UID)
    with pytest.raises(CorpusforgeError, match=f"mirror folder {root} belongs to uid {OTHER_UID}, not to this user"):
        mirror_dir(OUT)


@needs_root
def test_a_per_output_mirror_folder_owned_by_another_user_is_refused(tmpdir_here):
    planted = mirror_dir(OUT)
    os.chown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(CorpusforgeError, match=f"belongs to uid {OTHER_UID}"):
        RemoteOutput(OUT)


@pytest.mark.parametrize("mode", [0o777, 0o733, 0o755])
def test_a_mirror_folder_others_can_write_or_read_is_refused(tmpdir_here, mode):
    root = tmpdir_here / f"corpusforge-mirror-{os.geteuid()}"
    root.mkdir()
    root.chmod(mode)
    with pytest.raises(CorpusforgeError, match=f"mirror folder {root} (is writable by other users|has mode 755)"):
        mirror_dir(OUT)


def test_a_symlink_in_place_of_the_mirror_folder_is_refused(tmpdir_here, tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmpdir_here / f"corpusforge-mirror-{os.geteuid()}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CorpusforgeError, match="is a symlink, refused"):
        mirror_dir(OUT)


def test_the_override_folder_may_be_readable_but_must_be_ours_and_not_world_writable(tmp_path, monkeypatch):
    chosen = tmp_path / "mirrors"
    chosen.mkdir()
    chosen.chmod(0o755)
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(chosen))
    assert mirror_dir(OUT) == chosen / _hash(OUT)
    chosen.chmod(0o777)
    with pytest.raises(CorpusforgeError, match=r"\$CORPUSFORGE_MIRROR_DIR .* is writable by other users"):
        mirror_dir(OUT)
    if os.geteuid() == 0:
        chosen.chmod(0o755)
        os.chown(chosen, OTHER_UID, OTHER_UID)
        with pytest.raises(CorpusforgeError, match=f"belongs to uid {OTHER_UID}"):
            mirror_dir(OUT)


@needs_root
def test_the_cli_run_stops_on_a_foreign_mirror_and_uploads_nothing(s3_endpoint, shared_data, tmp_path,  # noqa: F811
                                                                   tmpdir_here):
    fs = _bucket()
    root = tmpdir_here / f"corpusforge-mirror-{os.geteuid()}"
    (root / _hash(OUT) / "train").mkdir(parents=True)
    (root / _hash(OUT) / "train" / "planted.bin").write_bytes(b"not ours")
    for p in (root, root / _hash(OUT), root / _hash(OUT) / "train"):
        os.chown(p, OTHER_UID, OTHER_UID)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(_recipe(shared_data, tmp_path)))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "r.yaml"), "-o", OUT, "-q", "-w", "1"])
    assert result.exit_code != 0 and f"belongs to uid {OTHER_UID}" in result.output, result.output
    assert not fs.exists("corpus/out")


def test_files_planted_in_the_mirror_are_not_uploaded_and_are_named(s3_endpoint, shared_data, tmp_path,  # noqa: F811
                                                                    monkeypatch, caplog):
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = _bucket()
    recipe = _recipe(shared_data, tmp_path)
    run(recipe, output=OUT, workers=1, progress=False)
    mirror = mirror_dir(OUT)
    stored = {p: fs.info(p)["ETag"] for p in fs.find("corpus/out") if "/_state/" not in p}
    (mirror / "train" / "shard_99999.safetensors").write_bytes(b"planted shard")
    (mirror / "extra").mkdir()
    (mirror / "extra" / "payload.txt").write_bytes(b"planted file")
    tokenizer = (mirror / "tokenizer.json").read_bytes()
    (mirror / "tokenizer.json").write_bytes(b'{"planted": true}')
    os.utime(mirror / "tokenizer.json", (2e9, 2e9))  # newer than the store's: a pull keeps it
    with caplog.at_level(logging.WARNING, logger="corpusforge.remote"):
        run(recipe, output=OUT, workers=1, progress=False)
    named = " ".join(r.getMessage() for r in caplog.records)
    for rel in ("train/shard_99999.safetensors", "extra/payload.txt", "tokenizer.json"):
        assert f"mirror file {mirror / rel} was not written by a run on this machine" in named
        assert not fs.exists(f"corpus/out/{rel}") or rel == "tokenizer.json"
    assert fs.cat_file("corpus/out/tokenizer.json") == tokenizer == (mirror / "tokenizer.json").read_bytes()
    assert not (mirror / "extra" / "payload.txt").exists()
    assert {p: fs.info(p)["ETag"] for p in stored} == stored
    assert validate_output(OUT)[0] == []


def test_a_planted_completion_record_does_not_skip_the_task_or_reach_the_store(s3_endpoint, shared_data,  # noqa: F811
                                                                               tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = _bucket()
    mirror = mirror_dir(OUT)
    (mirror / "_state" / "shards").mkdir(parents=True)
    (mirror / "_state" / "shards" / "000000.json").write_bytes(b'{"key": "forged"}')
    run(_recipe(shared_data, tmp_path), output=OUT, workers=1, progress=False)
    assert b"forged" not in fs.cat_file("corpus/out/_state/shards/000000.json")
    assert validate_output(OUT)[0] == []


def test_uploads_cut_short_are_completed_from_the_ledger(s3_endpoint, shared_data, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = _bucket()
    recipe = _recipe(shared_data, tmp_path)
    run(recipe, output=OUT, workers=1, progress=False)
    mirror = mirror_dir(OUT)
    assert stat.S_IMODE((mirror / LEDGER).stat().st_mode) == 0o600 and not fs.exists(f"corpus/out/{LEDGER}")
    shard = next(p for p in fs.find("corpus/out/train"))
    fs.rm_file(shard)
    fs.rm_file("corpus/out/_state/index/000000.json")
    assert RemoteOutput(OUT).push_missing() == 2
    assert fs.exists(shard) and fs.exists("corpus/out/_state/index/000000.json")
    assert validate_output(OUT)[0] == []


def test_a_recorded_file_changed_afterwards_is_not_uploaded(s3_endpoint, shared_data, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = _bucket()
    run(_recipe(shared_data, tmp_path), output=OUT, workers=1, progress=False)
    mirror = mirror_dir(OUT)
    fs.rm_file("corpus/out/stats.json")
    (mirror / "stats.json").write_bytes((mirror / "stats.json").read_bytes().replace(b"wiki", b"evil"))
    out = RemoteOutput(OUT)
    assert not out.recorded("stats.json") and out.push_missing() == 0
    assert not fs.exists("corpus/out/stats.json") and not (mirror / "stats.json").exists()


def test_a_mirror_in_a_folder_others_may_write_without_the_sticky_bit_is_refused(tmpdir_here):
    tmpdir_here.chmod(0o777)  # anyone could rename our folder away and put theirs in its place
    with pytest.raises(CorpusforgeError, match=f"the folder holding it, {tmpdir_here}, is writable by other users"):
        mirror_dir(OUT)
