"""A run as a plan of tasks that any scheduler can run one at a time: ``corpusforge plan`` and
``corpusforge run-task``.

``plan`` claims the output, lists the input and writes ``_state/schedule.json``: the stages in
order, how many tasks each has and which stage it waits for. ``run-task`` runs exactly one task
of one stage in its own process, after checking that the recipe and the input are the ones
planned and that every earlier stage is finished. A task's completion record (the same one
``corpusforge run`` writes) makes a second ``run-task`` of it a no-op, so Slurm job arrays,
Kubernetes indexed Jobs, Argo or Airflow can fan a stage out, retry freely and move on when every
task of it is done; ``corpusforge run`` finishes whatever is left. The tasks are the ones ``run``
runs, so the output is byte for byte the same.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from corpusforge.errors import CorpusforgeError
from corpusforge.executors.local import LocalExecutor
from corpusforge.layout import OutputLayout
from corpusforge.models.checks import check_models
from corpusforge.observe.tracking import check_tracking
from corpusforge.pipeline import Pipeline, Stage, _h
from corpusforge.recipe import Recipe
from corpusforge.remote import RemoteOutput, is_url
from corpusforge.runner import StageRun, check_remote_writable, output_lock, prepare_output
from corpusforge.stages import stage_kind
from corpusforge.stages.tokenizer import open_tokenizer
from corpusforge.state import (
    CompletionRecords,
    OutputLock,
    OutputRefused,
    atomic_write_json,
    check_writable,
    read_json,
)

SCHEDULE = "_state/schedule.json"


@dataclass(frozen=True)
class Target:
    """An output named by the user: a local folder, or an fsspec URL and its local mirror."""

    name: str
    local: Path
    remote: RemoteOutput | None

    @classmethod
    def of(cls, output: str | os.PathLike[str]) -> Target:
        name = str(output)
        if is_url(name):
            remote = RemoteOutput(name)
            return cls(remote.url, remote.local, remote)
        return cls(name, Path(name).expanduser().resolve(), None)


def describe(pipe: Pipeline, output: str) -> dict[str, Any]:
    """The schedule of ``pipe``: its stages in order, each with its task count and the stage it
    waits for (all of that stage's tasks), and the hash of the plan the tasks were cut from."""
    stages, after = [], []
    for stage in pipe.stages():
        stages.append({"name": stage.name, "kind": stage.kind, "tasks": stage.n_tasks, "after": after,
                       "task_ids": list(range(stage.n_tasks)),
                       "runs": "driver" if stage_kind(stage.kind).in_driver else "worker"})
        after = [stage.name]
    return {"version": 1, "output": output, "recipe_sha256": pipe.fingerprint,
            "plan_sha256": _h([t.to_dict() for t in pipe.plan]), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stages": stages}


def plan(recipe: Recipe, output: str | os.PathLike[str] | None = None, console: Console | None = None
         ) -> dict[str, Any]:
    """Claim ``output`` for ``recipe``, plan its tasks and write ``_state/schedule.json``; the schedule."""
    console = console or Console(stderr=True)
    target = Target.of(output or recipe.output.path)
    check_tracking(recipe)
    open_tokenizer(recipe)  # as `run` does: a tokenizer, model or device the run cannot use, before any work
    check_models(recipe)
    if not target.remote:
        check_writable(target.local)
    with output_lock(target.name, "plan"):
        if target.remote:
            check_remote_writable(target.remote)
        pipe = prepare_output(recipe, target.local, target.remote, console)
        before = target.remote.snapshot() if target.remote else {}
        schedule = describe(pipe, target.name)
        atomic_write_json(target.local / SCHEDULE, schedule)
        if target.remote:
            target.remote.push(before)
    return schedule


def _read_schedule(target: Target) -> dict[str, Any]:
    """The schedule ``plan`` wrote for ``target``, or a one-line error saying to run ``plan``."""
    try:
        if target.remote:
            # The plan, manifest, recipe and the records earlier tasks wrote (a task of a later stage
            # pulls the data it reads itself).
            files = target.remote.remote_files()
            target.remote.pull(files={rel: sig for rel, sig in files.items()
                                      if rel.startswith("_state/") or "/" not in rel})
        return read_json(target.local / SCHEDULE)
    except FileNotFoundError:
        raise CorpusforgeError(f"{target.name}: not planned (no {SCHEDULE}); run `corpusforge plan RECIPE "
                               f"--output {target.name}` first") from None


def run_task(recipe: Recipe, output: str | os.PathLike[str] | None, stage_name: str, task: int,
             console: Console | None = None, progress: bool = False) -> str:
    """Run task ``task`` of stage ``stage_name`` of a planned output; ``"ran"``, or ``"done"`` when
    its completion record was already there (nothing is run again). Errors name what to do."""
    console = console or Console(stderr=True)
    target = Target.of(output or recipe.output.path)
    schedule = _read_schedule(target)
    if schedule.get("recipe_sha256") != recipe.fingerprint():
        raise OutputRefused(f"{target.name}: planned with another recipe (fingerprint "
                            f"{str(schedule.get('recipe_sha256'))[:12]}…, this one {recipe.fingerprint()[:12]}…); "
                            "run `corpusforge plan` again with this recipe")
    with output_lock(target.name, "run-task", shared=True):
        pipe = Pipeline(recipe, target.local)
        if _h([t.to_dict() for t in pipe.plan]) != schedule["plan_sha256"]:
            raise OutputRefused(f"{target.name}: the input changed since `corpusforge plan` ran (the tasks it "
                                "listed are not the input's now); run `corpusforge plan` again")
        stages = pipe.stages()
        at = _stage_at(target, stages, stage_name, task)
        stage = stages[at]
        key = pipe.task_key(stage, task)
        records = CompletionRecords(target.local, stage.name)
        in_driver = stage_kind(stage.kind).in_driver  # one task that reads the whole corpus
        if records.done(task, key) is not None and not in_driver:
            return "done"
        run = StageRun(pipe, target.remote, console, progress)
        for earlier in stages[:at]:
            run.results[earlier.name] = _finished(pipe, earlier)
        if at:
            run.stage_done(stages[at - 1])
        with _task_lock(target, stage.name, task):
            if records.done(task, key) is not None and not in_driver:
                return "done"  # finished by another process between the first look and the lock
            if in_driver:
                was_done = records.done(0, key) is not None
                with run.bar:
                    run.run_stage(stage, None)
                if at == len(stages) - 1:  # the index: the run is complete
                    run.finish()
                return "done" if was_done else "ran"
            with run.bar:
                run.run_stage(stage, LocalExecutor(1), tasks=[task])
    return "ran"


def _stage_at(target: Target, stages: list[Stage], stage_name: str, task: int) -> int:
    """The position of stage ``stage_name``, or an error naming the stages or the task ids there are."""
    names = [s.name for s in stages]
    if stage_name not in names:
        raise CorpusforgeError(f"{target.name}: no stage {stage_name!r}; the stages are {', '.join(names)}")
    stage = stages[names.index(stage_name)]
    if not 0 <= task < stage.n_tasks:
        raise CorpusforgeError(f"stage {stage.name!r} has tasks 0-{stage.n_tasks - 1}; there is no task {task}")
    return names.index(stage_name)


def _finished(pipe: Pipeline, stage: Stage) -> list[dict[str, Any]]:
    """The completion records of every task of ``stage``, or an error naming the missing tasks."""
    records = CompletionRecords(pipe.output, stage.name)
    done = [records.done(t, pipe.task_key(stage, t)) for t in range(stage.n_tasks)]
    missing = [t for t, r in enumerate(done) if r is None]
    if missing:
        shown = ", ".join(map(str, missing[:8])) + (", …" if len(missing) > 8 else "")
        raise CorpusforgeError(f"stage {stage.name!r} is not finished: {len(missing)} of {stage.n_tasks} tasks "
                               f"have no completion record (tasks {shown}); run them first")
    return [r for r in done if r is not None]


def _task_lock(target: Target, stage: str, task: int) -> OutputLock:
    """The lock that keeps two processes on one machine from running the same task at once; for a
    URL it lies beside the mirror (whose files are uploaded), like the output's own lock."""
    name = f"{stage}-{task:06d}.lock"
    if target.remote:
        return OutputLock(target.local, "run-task", target.local.with_name(target.local.name + ".locks") / name)
    return OutputLock(target.local, "run-task", OutputLayout(target.local).task_lock(name))


def stage_names(recipe: Recipe) -> list[tuple[str, str]]:
    """``(name, kind)`` of every stage ``recipe`` runs, in order, without listing any input: the
    names depend on the steps alone (the task counts on the input)."""
    with tempfile.TemporaryDirectory(prefix="corpusforge-stages-") as tmp:
        return [(s.name, s.kind) for s in Pipeline(recipe, Path(tmp), plan=[]).stages()]
