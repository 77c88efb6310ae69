"""HuggingFace datasets (local copy, offline error), SQL (SQLite) and local git repositories."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from corpusforge import run
from corpusforge.errors import CorpusforgeError
from corpusforge.observe.stats import TaskContext
from corpusforge.sources.git import GitSource
from corpusforge.sources.hf import HFDatasetSource
from corpusforge.sources.sql import SqlSource


def _read(src, tmp_path):
    ctx = TaskContext("curate", 0, tmp_path)
    return [d for t in src.plan(1 << 20) for d in src.read(t, ctx)], ctx.quarantined


def test_hf_dataset_from_a_local_copy_with_split_template_and_max_records(tmp_path):
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"title": ["a", "b", "c"], "body": ["one", "two", "three"]}),
        "test": datasets.Dataset.from_dict({"title": ["t"], "body": ["held out"]}),
    })
    dd.save_to_disk(str(tmp_path / "ds"))
    src = HFDatasetSource(name="hf", path=str(tmp_path / "ds"), split="train", text_template="{title}: {body}",
                          max_records=2)
    docs, _ = _read(src, tmp_path)
    assert [d.text for d in docs] == ["a: one", "b: two"]
    assert "title" not in docs[0].metadata and "body" not in docs[0].metadata  # in the text already


def test_hf_dataset_through_the_pipeline(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": [f"document number {i}" for i in range(5)]}).save_to_disk(str(tmp_path / "ds"))
    stats = run({"sources": [{"type": "hf_dataset", "name": "hf", "path": str(tmp_path / "ds")}], "steps": [],
                 "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32}},
                output=str(tmp_path / "out"), workers=1)
    assert stats["documents"]["read"] == 5


def test_hf_hub_dataset_offline_says_the_hub_is_unreachable_and_how_to_pass_a_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = HFDatasetSource(name="hf", dataset="wikitext", config="wikitext-2-raw-v1", split="train")
    with pytest.raises(CorpusforgeError) as err:
        _read(src, tmp_path)
    assert "hub is unreachable" in str(err.value) and "save_to_disk" in str(err.value)
    assert "`path: DIR`" in str(err.value)


def test_sql_rows_stream_in_batches_with_a_template(tmp_path):
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table posts (id integer, title text, body text)")
        conn.executemany("insert into posts values (?, ?, ?)", [(i, f"T{i}", f"B{i}" if i != 3 else None)
                                                                for i in range(5)])
    src = SqlSource(name="db", url=f"sqlite:///{db}", query="select * from posts where id >= :lo order by id",
                    params={"lo": 1}, text_field="body", id_field="id", batch_size=2)
    docs, quarantined = _read(src, tmp_path)
    assert [(d.id, d.text, d.metadata["title"]) for d in docs] == [("1", "B1", "T1"), ("2", "B2", "T2"), ("4", "B4", "T4")]
    assert quarantined == [{"location": f"sqlite:///{db} row 2", "reason": "field 'body' is missing or not a string"}]


def test_sql_url_with_a_password_is_refused():
    with pytest.raises(ValueError, match="url_env"):
        SqlSource(name="db", url="postgresql://u:secret@localhost/db", query="select 1")


def test_git_repository_files_at_a_commit_with_license_and_language(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge, ...\n")
    (repo / "src").mkdir()
    (repo / "src" / "main.go").write_text("package main\n")
    (repo / "run").write_text("#!/bin/bash\necho hi\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), *env, "commit", "-qm", "init"], check=True)
    (repo / "src" / "main.go").write_text("package changed_after_commit\n")  # not committed: not read
    docs, _ = _read(GitSource(name="code", path=str(repo)), tmp_path)
    by_path = {d.metadata["path"]: d for d in docs}
    assert sorted(by_path) == ["LICENSE", "run", "src/main.go"]
    assert by_path["src/main.go"].text == "package main\n"
    assert by_path["src/main.go"].metadata["language"] == "go"
    assert by_path["run"].metadata["language"] == "shell"
    assert by_path["src/main.go"].metadata["license"] == "MIT"
    assert by_path["src/main.go"].metadata["license_file"] == "LICENSE"
    assert len(by_path["run"].metadata["commit"]) == 40


def test_catalog_lists_the_known_datasets_with_ids_and_licenses():
    from corpusforge.sources.catalog import format_catalog, list_datasets

    names = [d["name"] for d in list_datasets()]
    assert names == ["bookcorpus", "c4", "dolly", "openwebtext", "redpajama", "the_stack", "wikipedia", "wikitext"]
    assert all(d["hf_id"] and d["license"] for d in list_datasets())
    assert "allenai/c4" in format_catalog()


def test_collect_runs_a_catalog_dataset_from_a_local_copy(tmp_path):
    import datasets

    from corpusforge.sources.catalog import collect

    rows = {"instruction": [f"Say {i}" for i in range(6)], "context": [""] * 6, "response": [f"{i}" for i in range(6)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "dolly"))
    stats = collect("dolly", str(tmp_path / "out"), max_samples=4, preset="small", local_path=str(tmp_path / "dolly"),
                    workers=1, overrides={"steps": [], "tokenizer": {"vocab_size": 300},
                                          "sharding": {"sequence_length": 32}})
    assert stats["documents"]["read"] == 4


def test_collect_of_an_unknown_dataset_suggests_close_names():
    from corpusforge.sources.catalog import collect_recipe

    with pytest.raises(CorpusforgeError, match="did you mean wikitext"):
        collect_recipe("wikitxt")


def test_cli_collect_runs_a_local_copy_and_datasets_lists_the_catalog(tmp_path):
    import datasets
    from click.testing import CliRunner

    from corpusforge.cli import main

    rows = {"instruction": [f"Say {i}" for i in range(6)], "context": [""] * 6, "response": [f"{i}" for i in range(6)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "dolly"))
    listing = CliRunner().invoke(main, ["datasets"])
    assert listing.exit_code == 0 and "databricks/databricks-dolly-15k" in listing.output
    res = CliRunner().invoke(main, ["collect", "-d", "dolly", "-o", str(tmp_path / "out"), "-n", "5", "--local-path",
                                    str(tmp_path / "dolly"), "-w", "1", "--vocab-size", "300",
                                    "--sequence-length", "32", "-q"])
    assert res.exit_code == 0, res.output
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["documents"]["read"] == 5


def test_cli_collect_of_an_unknown_dataset_fails_with_suggestions(tmp_path):
    from click.testing import CliRunner

    from corpusforge.cli import main

    res = CliRunner().invoke(main, ["collect", "-d", "wikitxt", "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "did you mean wikitext" in res.output
