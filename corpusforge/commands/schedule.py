"""``corpusforge plan`` and ``corpusforge run-task``: a run cut into tasks for an outside scheduler
(Slurm job arrays, Kubernetes indexed Jobs, Argo, Airflow); see ``corpusforge.schedule``."""

from __future__ import annotations

import os
import sys

import click
import orjson

from corpusforge.errors import AccessError, CorpusforgeError, UnusableInput
from corpusforge.state import OutputRefused

# The recipe and schedule modules are imported in the commands: `corpusforge --help` stays fast.


def _exit(exc: Exception) -> None:
    """One line; exit 1 for an output or input that cannot be used now, 2 for a wrong command."""
    click.echo(f"error: {exc}", err=True)
    sys.exit(1 if isinstance(exc, (OutputRefused, UnusableInput, AccessError)) else 2)


@click.command("plan")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="Output folder or fsspec URL (default: the recipe's output.path).")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON instead of a table.")
def plan_command(recipe: str, output: str | None, as_json: bool) -> None:
    """Plan RECIPE into OUTPUT for a scheduler: claim the output, list the input and write
    OUTPUT/_state/schedule.json (stages in order, their task ids, the stage each waits for)."""
    from corpusforge.recipe import load_recipe
    from corpusforge.schedule import SCHEDULE, plan

    try:
        r = load_recipe(recipe)
        schedule = plan(r, output)
    except CorpusforgeError as exc:
        _exit(exc)
    if as_json:
        click.echo(orjson.dumps(schedule, option=orjson.OPT_INDENT_2).decode())
        return
    where = (output or r.output.path).rstrip("/")
    for s in schedule["stages"]:
        after = f"after {s['after'][0]}" if s["after"] else "first"
        click.echo(f"{s['name']:<24} {s['kind']:<10} {s['tasks']:>6} task{'s' if s['tasks'] != 1 else ' '}  {after}")
    click.echo(f"schedule: {where}/{SCHEDULE}\nrun a task: corpusforge run-task {recipe} --output {where} "
               f"--stage {schedule['stages'][0]['name']} --task 0")


@click.command("run-task")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="Output folder or fsspec URL that `corpusforge plan` planned.")
@click.option("--stage", "-s", "stage", required=True, help="Stage name, as `corpusforge plan` lists it.")
@click.option("--task", "-t", "task", type=click.IntRange(min=0), envvar="CORPUSFORGE_TASK",
              help="Task id (default: $CORPUSFORGE_TASK, else $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no report table.")
def run_task_command(recipe: str, output: str | None, stage: str, task: int | None, quiet: bool) -> None:
    """Run one task of one stage of a planned output, in this process. A task already finished is
    not run again (exit 0); a task whose earlier stages are unfinished is refused (exit 2)."""
    from corpusforge.recipe import load_recipe
    from corpusforge.schedule import run_task

    if task is None:
        index = os.environ.get("SLURM_ARRAY_TASK_ID") or os.environ.get("JOB_COMPLETION_INDEX")
        if index is None or not index.isdigit():
            _exit(CorpusforgeError("--task is required (or $CORPUSFORGE_TASK, $SLURM_ARRAY_TASK_ID, "
                                   "$JOB_COMPLETION_INDEX)"))
        task = int(str(index))
    try:
        what = run_task(load_recipe(recipe), output, stage, task, progress=not quiet)
    except CorpusforgeError as exc:
        _exit(exc)
    click.echo(f"{stage} task {task}: {'already done' if what == 'done' else 'done'}")


COMMANDS = [plan_command, run_task_command]
