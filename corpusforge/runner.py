"""Run a recipe: stage after stage, skipping finished tasks, then index and report.

This is the driver side; the work of each task is ``pipeline.run_task``. A run killed at any
point and started again finds the completion records and continues where it stopped.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

import corpusforge
from corpusforge.executors.local import LocalExecutor
from corpusforge.layout import OutputLayout
from corpusforge.media.stage import check_codebooks
from corpusforge.models.checks import check_models
from corpusforge.observe.card import write_card
from corpusforge.observe.progress import StageProgress
from corpusforge.observe.report import build_stats, print_report
from corpusforge.observe.tracking import check_tracking, track_run
from corpusforge.pipeline import Pipeline, Stage, run_task
from corpusforge.recipe import ExecutorConfig, Recipe
from corpusforge.redact_urls import redact_secrets
from corpusforge.remote import RemoteOutput, is_url, mirror_dir, run_synced_task
from corpusforge.stages import stage_kind
from corpusforge.stages.embeddings import finalize_embeddings
from corpusforge.stages.tokenizer import open_tokenizer
from corpusforge.state import (
    MARKER,
    CompletionRecords,
    OutputLock,
    OutputRefused,
    atomic_write_bytes,
    atomic_write_json,
    check_deletable,
    check_writable,
    is_temporary,
    read_json,
    remove_output,
    retire_published,
    write_refusal,
)

__all__ = ["StageRun", "clean", "embeddings_stage", "make_executor", "open_tokenizer", "output_lock",
           "prepare_output", "run"]


def _remove_stale_temporaries(output: Path) -> None:
    """Temporaries of a killed run are never valid output: clear them before starting."""
    if not output.exists():
        return
    for dirpath, _, files in os.walk(output):
        for f in files:
            if is_temporary(f):
                os.unlink(os.path.join(dirpath, f))


# Executor kinds: the module and class of each, imported when asked for (Ray and Spark are extras).
EXECUTORS = {"local": ("corpusforge.executors.local", "LocalExecutor"),
             "ray": ("corpusforge.executors.ray", "RayExecutor"),
             "spark": ("corpusforge.executors.spark", "SparkExecutor")}


def make_executor(cfg: ExecutorConfig, workers: int | None = None, kind: str | None = None,
                  address: str | None = None) -> Any:
    """The executor a run asks for: ``kind``/``address`` (command line) over the recipe's ``executor``."""
    kind = kind or cfg.kind
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    module, name = EXECUTORS[kind]
    executor = getattr(importlib.import_module(module), name)
    if executor is LocalExecutor:
        return LocalExecutor(workers or cfg.workers)
    return executor(address or cfg.address, workers or cfg.workers, cfg.max_retries)


def run(
    recipe: Recipe,
    output: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
    console: Console | None = None,
    executor: str | None = None,
    address: str | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """Run ``recipe`` into ``output`` (default: the recipe's ``output.path``, a folder or an fsspec
    URL); ``executor`` (local, ray) and ``address`` override the recipe's; ``fresh`` deletes the
    output first (only a corpusforge output, see ``state.check_deletable``). The output is locked
    for the whole run; ``OutputRefused`` says why it cannot be used. Returns the stats."""
    console = console or Console(stderr=True)
    target = str(output or recipe.output.path)
    remote = RemoteOutput(target) if is_url(target) else None
    out = remote.local if remote else Path(target).expanduser().resolve()
    check_tracking(recipe)
    open_tokenizer(recipe)  # a tokenizer the run cannot use is refused before anything runs
    check_models(recipe)  # every model path, device and credential, before any work
    if recipe.media is not None and recipe.media.codebooks:
        check_codebooks(recipe.media)  # a codebook cut for other features fails before any work
    if not remote:  # before the lock file is made in a folder that may not be an output
        (check_deletable if fresh else check_writable)(out)
    with output_lock(target):
        if fresh:
            if remote:
                remote.clear()
            else:
                remove_output(out, keep_lock=True)
        elif remote:
            check_remote_writable(remote)
        return _run_locked(recipe, out, remote, workers, progress, console, executor, address)


def check_remote_writable(remote: RemoteOutput) -> None:
    """Raise ``OutputRefused`` when the store's folder holds files that are not a corpusforge output's."""
    files = remote.remote_files()
    why = write_refusal(remote.url, {r.split("/", 1)[0] for r in files},
                        {r[len("_state/"):].split("/", 1)[0] for r in files if r.startswith("_state/")},
                        lambda rel: remote.fs.cat_file(f"{remote.root}/{rel}").decode("utf-8", "replace")
                        if rel in files else None)
    if why:
        raise OutputRefused(why)


def output_lock(output: str | os.PathLike[str], command: str = "run", create: bool = True,
                shared: bool = False) -> OutputLock:
    """The lock of an output folder (in its ``_state/``) or of an fsspec URL's mirror (beside it:
    the mirror is emptied by ``--fresh``); it excludes other processes on this machine. With
    ``create=False`` (commands that change a finished output) a local folder without ``_state/``
    is not locked."""
    if is_url(output):
        mirror = mirror_dir(str(output).rstrip("/"))
        return OutputLock(mirror, command, mirror.with_name(mirror.name + ".lock"), shared=shared)
    return OutputLock(Path(output).expanduser().resolve(), command, create=create, shared=shared)


def _claim(out: Path, fingerprint: str, console: Console, where: str) -> bool:
    """Mark ``out`` as this recipe's output before anything else is written in it. An output that
    another recipe wrote first loses what it published (``state.retire_published``): a re-run with
    a changed recipe is supported (work files and caches such as the judge's are reused), but its
    results must not sit beside the old recipe's. Returns whether the marker was written now."""
    marker = OutputLayout(out).marker
    try:
        theirs = read_json(marker).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        theirs = None
    if theirs is None:  # an output from before markers existed names its recipe in its index
        try:
            theirs = read_json(OutputLayout(out).index).get("recipe_sha256")
        except (OSError, ValueError, AttributeError):
            theirs = None
    if theirs == fingerprint and marker.exists():
        return False
    if theirs not in (None, fingerprint):
        removed = retire_published(out)
        if removed:
            console.print(f"{where}: was written by another recipe (fingerprint {theirs[:12]}…); its results "
                          f"({', '.join(removed)}) are replaced by this one's", highlight=False, soft_wrap=True)
    atomic_write_json(marker, {"corpusforge": corpusforge.__version__, "fingerprint": fingerprint,
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return True


def _run_locked(recipe: Recipe, out: Path, remote: RemoteOutput | None, workers: int | None, progress: bool,
                console: Console, executor: str | None, address: str | None) -> dict[str, Any]:
    started = (time.perf_counter(), time.time())  # planning (listing, hashing the input) counts
    run = StageRun(prepare_output(recipe, out, remote, console), remote, console, progress, started)
    ex = make_executor(recipe.executor, workers, executor, address)
    if isinstance(ex, LocalExecutor) and ex.workers == 1:
        # One worker means one core: tasks then run in this process, and the Rust thread pools of
        # tokenizers/pyarrow (sized when first used) must not spread over the other cores.
        os.environ.setdefault("RAYON_NUM_THREADS", "1")
    try:
        with run.bar:
            for stage in run.pipe.stages():
                run.run_stage(stage, ex)
    finally:
        ex.close()
    return run.finish()


def prepare_output(recipe: Recipe, out: Path, remote: RemoteOutput | None, console: Console) -> Pipeline:
    """Claim ``out`` for ``recipe`` (its marker first), plan the tasks and write the plan and the recipe
    beside the output: what every run, and ``corpusforge plan``, does before any task."""
    fingerprint = recipe.fingerprint()
    if not remote:
        _claim(out, fingerprint, console, str(out))  # first: an output cut short at once is still recognisable
    _remove_stale_temporaries(out)
    if remote:
        remote.pull()
        pulled = remote.snapshot()
        if _claim(out, fingerprint, console, remote.url):
            remote.fs.put_file(str(OutputLayout(out).marker), f"{remote.root}/{MARKER}")  # before any other object
            remote.push(pulled)  # and what another recipe published goes from the store too
        remote.push_missing()
    before = remote.snapshot() if remote else {}
    pipe = Pipeline(recipe, out)
    # The plan on disk is for people and `corpusforge embed`; tasks get the real one in their payload.
    atomic_write_json(pipe.layout.plan, redact_secrets([t.to_dict() for t in pipe.plan]))
    atomic_write_bytes(pipe.layout.recipe, recipe.to_yaml().encode())
    if remote:
        remote.push(before)
    return pipe


class StageRun:
    """The driver's side of a run: runs stages in order (skipping finished tasks), keeps their results
    and times, then writes the card and report. ``corpusforge run`` runs every stage through one;
    ``corpusforge run-task`` one task, with the results of earlier stages read from their records."""

    def __init__(self, pipe: Pipeline, remote: RemoteOutput | None, console: Console, progress: bool,
                 started: tuple[float, float] | None = None):
        self.pipe, self.remote, self.console, self.progress = pipe, remote, console, progress
        self.started, self.started_at = started or (time.perf_counter(), time.time())
        self.recipe_dict = pipe.recipe.model_dump(mode="json")
        self.plan_dicts = [t.to_dict() for t in pipe.plan]
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.stage_seconds: dict[str, float] = {}
        self.bar = StageProgress(console, progress)

    @property
    def where(self) -> str:
        return self.remote.url if self.remote else str(self.pipe.output)

    def stats(self) -> dict[str, Any]:
        """stats.json as the records gathered so far make it (``observe.report.build_stats``)."""
        return build_stats(self.pipe, self.results, self.stage_seconds, time.perf_counter() - self.started,
                           self.started_at)

    def run_stage(self, stage: Stage, ex: Any, tasks: list[int] | None = None) -> None:
        """Run ``stage``'s unfinished tasks (or only ``tasks`` of them) on ``ex``; a driver stage
        (tokenizer, index) runs here."""
        pipe, remote = self.pipe, self.remote
        kind = stage_kind(stage.kind)
        t0 = time.perf_counter()
        records = CompletionRecords(pipe.output, stage.name)
        before = {}
        if kind.writes_in_driver and remote:
            remote.pull()  # what tasks on other machines wrote
            before = remote.snapshot()
        if kind.in_driver:
            self.results[stage.name] = [kind.run_driver(self, stage, records)]
        else:
            self.results[stage.name] = _task_stage(pipe, records, stage, ex, self.bar, self.recipe_dict,
                                                   self.plan_dicts, remote.url if remote else None, tasks)
            if tasks is not None:
                return  # a part of the stage: what follows needs all of it
            self.stage_seconds[stage.name] = time.perf_counter() - t0
            self.stage_done(stage)
        if kind.writes_in_driver and remote:
            remote.push(before)
        self.stage_seconds[stage.name] = time.perf_counter() - t0

    def stage_done(self, stage: Stage) -> None:
        """What the driver does once every task of ``stage`` finished (its kind's ``finalize``: gather
        the embedding parts; after the first curation, fail an input that was mostly quarantined).
        Safe to repeat."""
        stage_kind(stage.kind).finalize(self, stage)

    def finish(self) -> dict[str, Any]:
        """The card, the trackers and the report of a run whose index is written; its stats."""
        out, remote = self.pipe.output, self.remote
        stats = read_json(self.pipe.layout.stats)
        if stats["documents"]["read"] and not stats["documents"]["kept"]:
            what = "no documents written" if self.pipe.recipe.curate_only else "0 shards"
            self.console.print(f"warning: the steps dropped all {stats['documents']['read']:,} documents read "
                               f"(0 kept, {what}); see the drops in stats.json", highlight=False, soft_wrap=True)
        before = remote.snapshot() if remote else {}
        write_card(out)
        tracked = track_run(self.pipe.recipe, out, stats)
        if remote:
            remote.push(before)
        if self.progress:
            print_report(stats, self.console)
            for tracker, where in tracked.items():
                self.console.print(f"{tracker}: {where}", highlight=False)
        return stats


def embeddings_stage(pipe: Pipeline, workers: int | None = None, progress: bool = True,
                     console: Console | None = None) -> list[dict[str, Any]]:
    """Run only the ``embeddings`` stage of ``pipe`` over its staged documents (``corpusforge embed``)."""
    stage = Stage("embeddings", "embeddings", len(pipe.plan))
    executor = LocalExecutor(workers or pipe.recipe.executor.workers)
    console = console or Console(stderr=True)
    bar = StageProgress(console, progress)
    with OutputLock(pipe.output, "embed", create=False):
        try:
            with bar:
                res = _task_stage(pipe, CompletionRecords(pipe.output, stage.name), stage, executor, bar,
                                  pipe.recipe.model_dump(mode="json"), [t.to_dict() for t in pipe.plan])
        finally:
            executor.close()
        finalize_embeddings(pipe, res, console)
    return res


def _task_stage(
    pipe: Pipeline,
    records: CompletionRecords,
    stage: Stage,
    executor: Any,
    bar: Progress,
    recipe_dict: dict[str, Any],
    plan_dicts: list[dict[str, Any]],
    remote: str | None = None,
    tasks: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Run the unfinished tasks of ``stage`` (of ``tasks`` only, if given); the results of all its
    finished tasks, in task order."""
    res: list[dict[str, Any] | None] = [None] * stage.n_tasks
    pending = []
    for t in range(stage.n_tasks) if tasks is None else tasks:
        key = pipe.task_key(stage, t)
        rec = records.done(t, key)
        if rec is None:
            pending.append((t, key))
        else:
            res[t] = rec
    if stage_kind(stage.kind).per_input:
        # Largest input first (stable for equal sizes): a big task left for the end would run alone
        # while the other workers idle. Results are kept by task number, so order changes nothing else.
        pending.sort(key=lambda tk: -pipe.plan[tk[0]].nbytes)
    bar_task = bar.add_task(stage.name, total=stage.n_tasks, completed=stage.n_tasks - len(pending))
    payloads = [
        {"recipe": recipe_dict, "plan": plan_dicts, "output": str(pipe.output), "fingerprint": pipe.fingerprint,
         "stage": stage.__dict__, "task": t, "key": key, **({"remote": remote} if remote else {})}
        for t, key in pending
    ]
    for i, result in executor.map_unordered(run_synced_task if remote else run_task, payloads):
        res[pending[i][0]] = result
        bar.advance(bar_task)
    return [r for r in res if r is not None]


def clean(output: str | os.PathLike[str]) -> None:
    """Remove a corpusforge output folder (or one at an fsspec URL, and its mirror) entirely; a
    folder that is not one, or holds files corpusforge did not write, raises ``OutputRefused``."""
    with output_lock(output, "clean"):
        if is_url(output):
            RemoteOutput(str(output)).clear()
        else:
            remove_output(Path(output).expanduser().resolve())
