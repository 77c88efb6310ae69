"""The git source reads a remote repository by URL: cloned bare into the cache, fetched again at
each plan, so a re-run sees new commits; served for real by ``git daemon`` on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from corpusforge.errors import CorpusforgeError
from corpusforge.observe.stats import TaskContext
from corpusforge.sources.git import GitSource, is_remote
from tests.conftest import SHARED_DATA

GIT = ["-c", "user.name=t", "-c", "user.email=t@t"]
# Real source files (and their paths) from the shared code sample: a small repository.
_RECORDS = [json.loads(line) for line in (SHARED_DATA / "code" / "code.jsonl").read_text(encoding="utf-8").splitlines()]
FILES = {r["path"]: r["text"] for r in _RECORDS if r["language"] == "python" and r["text"].strip()}
FILES = dict(sorted(FILES.items())[:3])


def _commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), *GIT, "commit", "-qm", message], check=True)


@pytest.fixture
def served(tmp_path):
    """A repository of real Python files served by ``git daemon`` on 127.0.0.1: (work tree, URL)."""
    base = tmp_path / "served"
    repo = base / "project"
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _commit(repo, FILES, "init")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                               "--listen=127.0.0.1", f"--port={port}", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield repo, f"git://127.0.0.1:{port}/project"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def _read(src: GitSource, tmp_path: Path) -> list:
    ctx = TaskContext("curate", 0, tmp_path)
    return [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]


def test_a_remote_repository_is_read_at_its_commit_and_a_new_commit_is_seen_on_the_next_plan(
        served, tmp_path, monkeypatch):
    repo, url = served
    monkeypatch.setenv("CORPUSFORGE_GIT_CACHE", str(tmp_path / "cache"))
    docs = _read(GitSource(name="code", path=url), tmp_path)
    assert {d.metadata["path"]: d.text for d in docs} == FILES
    assert {d.metadata["repo"] for d in docs} == {"project"} and docs[0].source.startswith(url + "/")
    _commit(repo, {"NEWS.md": "A new file, committed after the first clone.\n"}, "news")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    docs = _read(GitSource(name="code", path=url), tmp_path)
    assert "NEWS.md" in {d.metadata["path"] for d in docs} and {d.metadata["commit"] for d in docs} == {head}


def test_a_recipe_with_a_remote_repository_runs_through_the_cli(served, tmp_path):
    _, url = served
    recipe = {"sources": [{"type": "git", "name": "code", "path": url, "rev": "main"}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 64}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(tmp_path / "recipe.yaml"),
                           "-o", str(tmp_path / "out"), "-q", "-w", "1"], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "CORPUSFORGE_GIT_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["documents"]["read"] == len(FILES)


def test_an_unreachable_remote_is_one_error_naming_it_and_command_transports_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUSFORGE_GIT_CACHE", str(tmp_path / "cache"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CorpusforgeError, match=f"git clone --bare failed in git://127.0.0.1:{port}/nothing"):
        GitSource(name="code", path=f"git://127.0.0.1:{port}/nothing").plan(1)
    assert is_remote("git@example.com:org/repo.git") and is_remote("https://example.com/r.git")
    assert not is_remote("ext::sh -c touch% /tmp/pwned") and not is_remote("relative/repo")
