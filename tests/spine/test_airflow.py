"""The Airflow DAG factory: the DAG that `recipe_dag` builds, run by Airflow itself (`airflow dags
test`), writes the bytes `corpusforge run` writes. Airflow is not among the test dependencies (it
pins much of what we use): this runs where an ``airflow`` command is on PATH or named by
``$CORPUSFORGE_AIRFLOW`` (its venv needs corpusforge too: ``pip install -e .`` there), e.g.
    python3 -m venv /tmp/af && /tmp/af/bin/pip install apache-airflow -e .
    CORPUSFORGE_AIRFLOW=/tmp/af/bin/airflow .venv/bin/python -m pytest tests/spine/test_airflow.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corpusforge import run
from tests.conftest import REPO
from tests.spine.test_deploy import _recipe
from tests.spine.test_schedule import _files

AIRFLOW = os.environ.get("CORPUSFORGE_AIRFLOW") or shutil.which("airflow")


@pytest.mark.skipif(AIRFLOW is None, reason="no airflow command (see the module docstring to run this)")
def test_airflow_runs_the_recipe_dag_to_the_bytes_of_a_run(shared_data, tmp_path):
    recipe, out = _recipe(shared_data, tmp_path), tmp_path / "airflow-out"
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "corpus.py").write_text(f"""
import pendulum
from corpusforge.integrations.airflow import recipe_dag
dag = recipe_dag({str(recipe)!r}, output={str(out)!r}, dag_id="corpus",
                 corpusforge={str(Path(sys.executable).parent / "corpusforge")!r}, start_date=pendulum.datetime(2026, 1, 1))
""")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(REPO)}
    for args in (["db", "migrate"], ["dags", "reserialize"], ["dags", "test", "corpus"]):
        res = subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=env, timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    listed = subprocess.run([AIRFLOW, "tasks", "list", "corpus"], capture_output=True, text=True, env=env).stdout
    assert {"plan", "curate.run_task", "exact_dedup.run_task", "tokenizer.run_task", "shards.run_task",
            "index.run_task"} <= set(listed.split())
    run(yaml.safe_load(recipe.read_text()), output=str(tmp_path / "local"), workers=1, progress=False)
    assert _files(out) == _files(tmp_path / "local")
