"""Executor options without a cluster: they stay out of the fingerprint, and misuse fails clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corpusforge.errors import CorpusforgeError
from corpusforge.recipe import load_recipe


def test_executor_kind_address_and_retries_leave_the_fingerprint_unchanged():
    base = {"sources": [{"path": "."}]}
    ray = {**base, "executor": {"kind": "ray", "address": "ray://head:10001", "max_retries": 0, "workers": 3}}
    assert load_recipe(base).fingerprint() == load_recipe(ray).fingerprint()
    assert load_recipe(base).fingerprint() != load_recipe({**base, "executor": {"task_bytes": 5000}}).fingerprint()


def test_an_unknown_executor_kind_is_a_recipe_error_naming_the_field():
    with pytest.raises(CorpusforgeError, match="executor.kind"):
        load_recipe({"sources": [{"path": "."}], "executor": {"kind": "dask"}})


def test_executor_ray_without_ray_installed_says_which_extra_to_install(monkeypatch):
    from corpusforge.executors.ray import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(CorpusforgeError, match=r"corpusforge\[ray\]"):
        RayExecutor()


def test_address_with_the_local_executor_is_refused(tmp_path):
    (tmp_path / "r.yaml").write_text("sources:\n  - path: .\n")
    res = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(tmp_path / "r.yaml"),
                          "--executor", "local", "--address", "auto"], capture_output=True, text=True)
    assert res.returncode == 2 and "--address names a Ray cluster" in res.stderr


def test_an_address_nobody_listens_on_fails_at_once_naming_it():
    pytest.importorskip("ray")
    import socket

    from corpusforge.executors.ray import RayExecutor

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(CorpusforgeError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
            RayExecutor(address=f"127.0.0.1:{port}")
