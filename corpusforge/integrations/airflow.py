"""An Airflow DAG from a recipe: a ``plan`` task, then one task group per stage, each fanning out
``corpusforge run-task`` over the stage's task ids (dynamic task mapping), one group after the other.

    from corpusforge.integrations.airflow import recipe_dag
    dag = recipe_dag("/opt/recipes/web.yaml", output="s3://bucket/web", dag_id="web_corpus")

The stage names come from the recipe's steps (no input is listed when Airflow parses the file);
the task counts come from ``corpusforge plan`` when the DAG runs. Every task is the real CLI in a
subprocess, so the Airflow workers need corpusforge on their PATH (or ``corpusforge=`` a command,
e.g. a venv's ``bin/corpusforge``); a retried or re-run task that already finished is a no-op.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from corpusforge.recipe import load_recipe
from corpusforge.schedule import stage_names


def _airflow() -> tuple[Any, Any, Any, Any]:
    """DAG, TaskGroup, the task decorator and BashOperator, from Airflow 3 (or 2.x)."""
    try:
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG, TaskGroup, task
    except ImportError:
        try:
            from airflow import DAG
            from airflow.decorators import task
            from airflow.operators.bash import BashOperator
            from airflow.utils.task_group import TaskGroup
        except ImportError:
            raise ImportError("corpusforge.integrations.airflow needs Apache Airflow: pip install apache-airflow") \
                from None
    return DAG, TaskGroup, task, BashOperator


def recipe_dag(recipe: str | Path, output: str | None = None, dag_id: str | None = None,
               corpusforge: str = "corpusforge", **dag_args: Any) -> Any:
    """The DAG that runs ``recipe`` into ``output`` (default: its ``output.path``) task by task;
    ``dag_args`` go to ``DAG`` (``schedule``, ``start_date``, ``default_args`` with retries, ...)."""
    DAG, TaskGroup, task, BashOperator = _airflow()
    recipe = str(Path(recipe).expanduser().resolve())
    parsed = load_recipe(recipe)
    output = output or parsed.output.path
    stages = stage_names(parsed)
    base = f"{shlex.quote(corpusforge)} run-task {shlex.quote(recipe)} --output {shlex.quote(output)} --quiet"
    dag_args.setdefault("schedule", None)
    dag_args.setdefault("catchup", False)
    with DAG(dag_id or f"corpusforge_{parsed.name}".replace("-", "_"), **dag_args) as dag:

        @task(task_id="plan")
        def plan() -> dict[str, int]:
            """Claim the output, list the input; each stage's task count."""
            done = subprocess.run([corpusforge, "plan", recipe, "--output", output, "--json"], check=True,
                                  capture_output=True, text=True)
            return {s["name"]: s["tasks"] for s in json.loads(done.stdout)["stages"]}

        counts = plan()
        before: Any = counts
        for name, kind in stages:
            with TaskGroup(group_id=name) as group:

                @task(task_id="task_ids")
                def task_ids(counts: dict[str, int], stage: str = name) -> list[dict[str, str]]:
                    return [{"CORPUSFORGE_TASK": str(t)} for t in range(counts[stage])]

                BashOperator.partial(task_id="run_task", bash_command=f"{base} --stage {shlex.quote(name)}",
                                     append_env=True, doc=f"one task of the {kind} stage {name!r}").expand(
                    env=task_ids(counts))
            before >> group
            before = group
    return dag
