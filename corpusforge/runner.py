"""Run a recipe: stage after stage, skipping finished tasks, then index and report.

This is the driver side; the work of each task is ``pipeline.run_task``. A run killed at any
point and started again finds the completion records and continues where it stopped.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from rich.console import Console
from rich.progress import Progress

from corpusforge.embeddings.stage import finalize_embeddings
from corpusforge.errors import CorpusforgeError, UnusableInput
from corpusforge.executors.local import LocalExecutor
from corpusforge.media.items import text_only
from corpusforge.models.checks import check_models
from corpusforge.observe.card import write_card
from corpusforge.observe.lineage import finalize_lineage, read_lineage
from corpusforge.observe.progress import CHARS, StageProgress, counted_texts, to_phase
from corpusforge.observe.report import build_stats, print_report
from corpusforge.observe.stats import TIMING, TaskContext, peak_rss_mb, reset_peak_rss
from corpusforge.observe.tracking import check_tracking, track_run
from corpusforge.observe.version import write_version
from corpusforge.pipeline import Pipeline, Stage, run_task
from corpusforge.recipe import ExecutorConfig, Recipe
from corpusforge.redact_urls import redact_secrets
from corpusforge.remote import RemoteOutput, is_url, mirror_dir, run_synced_task
from corpusforge.shards.index import INDEX_NAME, finalize_shards
from corpusforge.shards.shuffle import shuffle_order, shuffle_shards, shuffled_prefix
from corpusforge.staging import DOCUMENTS_INDEX
from corpusforge.state import (
    MARKER,
    CompletionRecords,
    OutputLock,
    OutputRefused,
    atomic_write_bytes,
    atomic_write_json,
    check_deletable,
    check_writable,
    file_sha256,
    is_temporary,
    read_json,
    remove_output,
    retire_published,
    write_refusal,
)
from corpusforge.tokenize.encoder import (
    HF_NAME,
    SPM_NAME,
    load_encoder,
    resolve_path,
    stored_name,
    train_to_bytes,
)
from corpusforge.tokenize.manifest import manifest_texts
from corpusforge.tokenize.roles import CONFIG_NAME, MAP_NAME, write_hf_config
from corpusforge.tokenize.special import ROLES


def _remove_stale_temporaries(output: Path) -> None:
    """Temporaries of a killed run are never valid output: clear them before starting."""
    if not output.exists():
        return
    for dirpath, _, files in os.walk(output):
        for f in files:
            if is_temporary(f):
                os.unlink(os.path.join(dirpath, f))


# Stages whose files the driver writes (not only its tasks): an fsspec output pulls before, pushes after.
_DRIVER_WRITES = ("tokenizer", "index", "embeddings")


def make_executor(cfg: ExecutorConfig, workers: int | None = None, kind: str | None = None,
                  address: str | None = None) -> Any:
    """The executor a run asks for: ``kind``/``address`` (command line) over the recipe's ``executor``."""
    kind = kind or cfg.kind
    if kind == "ray":
        from corpusforge.executors.ray import RayExecutor

        return RayExecutor(address or cfg.address, workers or cfg.workers, cfg.max_retries)
    if kind == "spark":
        from corpusforge.executors.spark import SparkExecutor

        return SparkExecutor(address or cfg.address, workers or cfg.workers, cfg.max_retries)
    if kind != "local":
        raise ValueError(f"executor {kind!r} is unknown; allowed: local, ray, spark")
    return LocalExecutor(workers or cfg.workers)


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
        from corpusforge.media.stage import check_codebooks

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
    marker = out / MARKER
    try:
        theirs = read_json(marker).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        theirs = None
    if theirs is None:  # an output from before markers existed names its recipe in its index
        try:
            theirs = read_json(out / INDEX_NAME).get("recipe_sha256")
        except (OSError, ValueError, AttributeError):
            theirs = None
    if theirs == fingerprint and marker.exists():
        return False
    if theirs not in (None, fingerprint):
        removed = retire_published(out)
        if removed:
            console.print(f"{where}: was written by another recipe (fingerprint {theirs[:12]}…); its results "
                          f"({', '.join(removed)}) are replaced by this one's", highlight=False, soft_wrap=True)
    import corpusforge

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
            remote.fs.put_file(str(out / MARKER), f"{remote.root}/{MARKER}")  # before any other object
            remote.push(pulled)  # and what another recipe published goes from the store too
        remote.push_missing()
    before = remote.snapshot() if remote else {}
    pipe = Pipeline(recipe, out)
    # The plan on disk is for people and `corpusforge embed`; tasks get the real one in their payload.
    atomic_write_json(out / "_state" / "plan.json", redact_secrets([t.to_dict() for t in pipe.plan]))
    atomic_write_bytes(out / "recipe.yaml", recipe.to_yaml().encode())
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

    def run_stage(self, stage: Stage, ex: Any, tasks: list[int] | None = None) -> None:
        """Run ``stage``'s unfinished tasks (or only ``tasks`` of them) on ``ex``; a driver stage
        (tokenizer, index) runs here."""
        pipe, remote = self.pipe, self.remote
        t0 = time.perf_counter()
        records = CompletionRecords(pipe.output, stage.name)
        before = {}
        if stage.kind in _DRIVER_WRITES and remote:
            remote.pull()  # what tasks on other machines wrote
            before = remote.snapshot()
        if stage.kind == "tokenizer":
            self.results[stage.name] = [_tokenizer_stage(pipe, records, stage, self.results, self.bar)]
        elif stage.kind == "index":
            stats = build_stats(pipe, self.results, self.stage_seconds, time.perf_counter() - self.started,
                                self.started_at)
            index_stage = _documents_index_stage if pipe.recipe.curate_only else _index_stage
            self.results[stage.name] = [index_stage(pipe, records, stage, self.results, stats, self.console)]
        else:
            self.results[stage.name] = _task_stage(pipe, records, stage, ex, self.bar, self.recipe_dict,
                                                   self.plan_dicts, remote.url if remote else None, tasks)
            if tasks is not None:
                return  # a part of the stage: what follows needs all of it
            self.stage_seconds[stage.name] = time.perf_counter() - t0
            self.stage_done(stage)
        if stage.kind in _DRIVER_WRITES and remote:
            remote.push(before)
        self.stage_seconds[stage.name] = time.perf_counter() - t0

    def stage_done(self, stage: Stage) -> None:
        """What the driver does once every task of ``stage`` finished: gather the embedding parts;
        after the first curation, fail an input that was mostly quarantined (before a tokenizer is
        trained on what may be nothing). Safe to repeat."""
        if stage.kind == "embeddings":
            finalize_embeddings(self.pipe, self.results[stage.name], self.console)
        if stage.kind == "curate" and stage.segment == 0:
            _check_quarantine(self.pipe, self.results, self.stage_seconds, time.perf_counter() - self.started,
                              self.started_at, self.where, self.remote)

    def finish(self) -> dict[str, Any]:
        """The card, the trackers and the report of a run whose index is written; its stats."""
        out, remote = self.pipe.output, self.remote
        stats = read_json(out / "stats.json")
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


def _check_quarantine(pipe: Pipeline, results: dict[str, list[dict[str, Any]]], stage_seconds: dict[str, float],
                      elapsed: float, started_at: float, where: str, remote: RemoteOutput | None) -> None:
    """Raise ``UnusableInput`` when the sources gave no document or more than the recipe's
    ``max_quarantine_fraction`` of the records read was quarantined, after writing stats.json so
    the user can see why. Entries that cost no document (a refused media reference) do not count."""
    curate = results["curate"]
    read = sum(r["steps"][0]["docs_out"] for r in curate if r.get("steps"))
    lost = sum(r.get("quarantined", 0) for r in curate)
    limit = pipe.recipe.max_quarantine_fraction
    if read and lost <= limit * (read + lost):
        return
    reasons: Counter[str] = Counter()
    for r in curate:
        reasons.update(r.get("quarantine_reasons", {}))
    top = ", ".join(f"{why}: {n:,}" for why, n in reasons.most_common(3))
    before = remote.snapshot() if remote else {}
    atomic_write_json(pipe.output / "stats.json", build_stats(pipe, results, stage_seconds, elapsed, started_at))
    if remote:
        remote.push(before)
    see = f"; see {where.rstrip('/')}/quarantine/"
    if not read:
        what = f"{lost:,} records quarantined ({top}){see}" if lost else "the sources yielded no record"
        raise UnusableInput(f"no documents: {what}")
    raise UnusableInput(f"too many records quarantined: {lost:,} of {read + lost:,} ({lost / (read + lost):.0%}, "
                        f"max_quarantine_fraction is {limit:g}; {top}){see}")


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


# Stages with one task per planned input, whose input size is known before they run.
_PER_INPUT_TASK = ("curate", "embeddings", "shards")


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
    if stage.kind in _PER_INPUT_TASK:
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


def _training_texts(pipe: Pipeline, results: dict[str, list[dict[str, Any]]], budget: int):
    """Curated text for tokenizer training: the same share of every task, up to ``budget`` chars."""
    last_curate = [name for name in results if name.startswith("curate")][-1]
    task_chars = [r["steps"][-1]["chars_out"] for r in results[last_curate]]
    total = sum(task_chars) or 1
    share = min(1.0, budget / total)
    for t, chars in enumerate(task_chars):
        ctx = TaskContext("tokenizer", t, pipe.output)
        taken, limit = 0, share * chars
        for text in _task_texts(pipe, t, ctx):
            if taken >= limit:
                break
            taken += len(text)
            yield text


def _task_texts(pipe: Pipeline, task: int, ctx: TaskContext) -> Iterator[str]:
    """The final curated texts of ``task`` in order, media markers removed; read as Arrow columns
    (no Document per row) where the documents allow it, which made this serial read ~4x faster."""
    columns = pipe.final_columns(task, ctx, 1 << 20)
    if columns is None:
        for doc in pipe.final_documents(task, ctx)[0]:
            yield doc.text if doc.media is None else text_only(doc.text)
        return
    for c in columns[0]:
        has_media = [bool(m.get("media")) for m in c.metas]
        for text, m in zip(c.texts, c.meta_index.tolist(), strict=True):
            yield text_only(text) if has_media[m] else text


def open_tokenizer(recipe: Recipe, path: Path | None = None) -> Any:
    """The encoder of the recipe's tokenizer with the run's special ids: ``tokenizer.path`` (or a
    trained file at ``path``) with the roles and layout the recipe asks for; None when the tokenizer
    is still to be trained. Raises ``RecipeError`` saying what to change for one it cannot use."""
    cfg = recipe.tokenizer
    if path is None:
        if cfg is None or not cfg.path:
            return None
        path = resolve_path(cfg.path)
    trained = not cfg.path
    return load_encoder(path, None if trained else {r: getattr(cfg, r) for r in ROLES},
                        "rtdlm" if trained else cfg.special_tokens, recipe.sharding.mask_special,
                        recipe.media is not None)


def _tokenizer_stage(
    pipe: Pipeline, records: CompletionRecords, stage: Stage, results: dict[str, list[dict[str, Any]]],
    bar: Progress,
) -> dict[str, Any]:
    cfg = pipe.recipe.tokenizer
    name = stored_name(cfg)
    path = pipe.output / name
    key = pipe.task_key(stage, 0)
    rec = records.done(0, key)
    started = time.time()
    if (rec is not None and path.exists() and file_sha256(path) == rec["sha256"]
            and (pipe.output / CONFIG_NAME).exists()):
        intact = pipe.recipe.media is None
        if not intact:
            from corpusforge.media.stage import codebooks_intact

            intact = codebooks_intact(pipe.output, rec)
        if intact:
            bar.add_task(stage.name, total=1, completed=1)
            return rec
    reset_peak_rss()  # the stage runs in this process: its own peak, as a task's
    if cfg.path:
        bar_task = bar.add_task(stage.name, total=1)
        src = resolve_path(cfg.path)
        enc = open_tokenizer(pipe.recipe, src)  # its special ids, before anything is written
        data = enc.to_bytes() if enc.special.appended else src.read_bytes()
        source = str(Path(cfg.path).expanduser())
    else:
        # The sample's characters as they are read, then the training phase (13-30 s on big inputs).
        bar_task = bar.add_task(stage.name, total=None if cfg.manifest else _sample_chars(results, cfg.sample_bytes),
                                **{CHARS: True})
        texts = manifest_texts(cfg.manifest, pipe.output, cfg.sample_bytes) if cfg.manifest else _training_texts(
            pipe, results, cfg.sample_bytes)
        data = train_to_bytes(cfg, counted_texts(texts, bar, bar_task, f"{stage.name} (training)"))
        source = "trained"
    atomic_write_bytes(path, data)
    other = pipe.output / (SPM_NAME if name == HF_NAME else HF_NAME)
    if other.exists():
        other.unlink()  # left by an earlier run of another tokenizer kind
    for stale in (CONFIG_NAME, MAP_NAME):
        (pipe.output / stale).unlink(missing_ok=True)  # the stored tokenizer's roles are resolved afresh
    tok = open_tokenizer(pipe.recipe, path) if not cfg.path else enc
    special = tok.special
    write_hf_config(pipe.output, special, name == HF_NAME, pipe.recipe.sharding.sequence_length)
    result = {"sha256": file_sha256(path), "vocab_size": tok.vocab_size, "source": source, "path": name,
              "special_ids": special.to_dict()}
    if pipe.recipe.media is not None:
        to_phase(bar, bar_task, f"{stage.name} (codebooks)")
        result.update(_codebook_stage(pipe))
    result["peak_rss_mb"] = peak_rss_mb()
    result[TIMING] = [started, time.time()]
    records.write(0, key, result)
    read = next(t.completed for t in bar.tasks if t.id == bar_task) or 1
    bar.update(bar_task, description=stage.name, total=read, completed=read)
    return result


def _sample_chars(results: dict[str, list[dict[str, Any]]], budget: int) -> int:
    """The characters ``_training_texts`` reads: the budget, or all the curated text if less."""
    last_curate = [name for name in results if name.startswith("curate")][-1]
    return min(budget, sum(r["steps"][-1]["chars_out"] for r in results[last_curate]))


def _codebook_stage(pipe: Pipeline) -> dict[str, Any]:
    """Train or copy the media codebooks beside the tokenizer; files that fail to decode are
    quarantined under the tokenizer stage."""
    from corpusforge.media.stage import prepare_codebooks
    ctx = TaskContext("tokenizer", 0, pipe.output)

    def docs_of_tasks():
        for t in range(len(pipe.plan)):
            yield pipe.final_documents(t, TaskContext("tokenizer", t, pipe.output))[0]

    result = prepare_codebooks(pipe.recipe.media, pipe.output, docs_of_tasks(), pipe.recipe.seed,
                               lambda where, why: ctx.quarantine(where, why))
    ctx.flush()
    return result


def _index_stage(
    pipe: Pipeline,
    records: CompletionRecords,
    stage: Stage,
    results: dict[str, list[dict[str, Any]]],
    stats: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    key = pipe.task_key(stage, 0)
    rec = records.done(0, key)
    if rec is not None and (pipe.output / INDEX_NAME).exists() and (pipe.output / "stats.json").exists():
        return rec
    cfg = pipe.recipe.sharding
    tok = results["tokenizer"][0]
    tokens = tok["special_ids"]["tokens"]  # by id: a record read back from JSON has its keys sorted
    header = {
        "format": cfg.format,
        "version": 1,
        "sequence_length": cfg.sequence_length,
        "dtypes": {"input_ids": cfg.token_dtype, "attention_mask": "int32", "modality_mask": "uint8", "labels": "int32"},
        "tokenizer": {"path": tok.get("path", HF_NAME), "sha256": tok["sha256"], "vocab_size": tok["vocab_size"],
                      "special_tokens": sorted(tokens, key=lambda t: (tokens[t], t))},
        "special_ids": tok["special_ids"],
        "recipe_sha256": pipe.fingerprint,
        "seed": pipe.recipe.seed,
        "split_ratios": cfg.splits,
    }
    for extra in ("position_ids", "document_ids"):
        if getattr(cfg, extra):
            header["dtypes"][extra] = "int32"
    if pipe.recipe.media is not None:
        header["media"] = pipe.media_layout(tok.get("codebooks"))
        embeddings: dict[str, Any] = {}
        for r in results["shards"]:
            for m, part in r.get("media", {}).get("embeddings", {}).items():
                embeddings.setdefault(m, {"model": part["model"], "dim": part["dim"], "parts": []})["parts"].append(
                    {k: part[k] for k in ("embeddings", "ids", "rows")})
        if embeddings:
            header["media"]["embeddings"] = embeddings
    if cfg.packing != "concat":
        header["packing"] = cfg.packing
    if cfg.mixture:
        header["mixture"] = cfg.mixture
    if cfg.max_records:
        header["max_records"] = cfg.max_records
    if cfg.mixture or cfg.max_records:
        header["tokens_by_source"] = stats["tokens_by_source"]
    per_task = [r["shards"] for r in results["shards"]]
    task_rows = {s: [sum(p["samples"] for p in t.get(s, [])) for t in per_task] for s in cfg.splits}
    if cfg.shuffle:
        per_task = shuffle_shards(per_task, list(cfg.splits), pipe.recipe.seed, cfg.sequence_length,
                                  lambda split: pipe.shard_writer(shuffled_prefix(pipe.work, split), split))
        header["shuffled"] = True
    index = finalize_shards(pipe.output, per_task, list(cfg.splits), header)
    order = {s: shuffle_order(pipe.recipe.seed, sum(n)) for s, n in task_rows.items()} if cfg.shuffle else None
    finalize_lineage(pipe.output, pipe.work, len(results["shards"]), task_rows, index, order)
    write_version(pipe.output)
    stats["shards"] = index["totals"]
    stats["ids"] = {"duplicated": _duplicate_ids(pipe, console)}
    atomic_write_json(pipe.output / "stats.json", stats)
    result = {"totals": index["totals"]}
    records.write(0, key, result)
    return result


def _documents_index_stage(
    pipe: Pipeline,
    records: CompletionRecords,
    stage: Stage,
    results: dict[str, list[dict[str, Any]]],
    stats: dict[str, Any],
    console: Console,
) -> dict[str, Any]:
    """A curate-only run's index: ``documents_index.json`` (every part: path, documents, bytes,
    sha256; totals per split), ``version.json`` and ``stats.json``; parts an earlier run of this
    output left that are not listed are removed."""
    key = pipe.task_key(stage, 0)
    rec = records.done(0, key)
    if rec is not None and (pipe.output / DOCUMENTS_INDEX).exists() and (pipe.output / "stats.json").exists():
        return rec
    out = pipe.recipe.output
    parts = [p for r in results["documents"] for p in r["documents"]]
    totals = {"parts": len(parts), "documents": sum(p["documents"] for p in parts),
              "bytes": sum(p["bytes"] for p in parts)}
    index = {"format": "documents", "version": 1, "documents_format": out.documents,
             "fields": ["id", "text", "source", "offset", "metadata"], "recipe_sha256": pipe.fingerprint,
             "seed": pipe.recipe.seed, "split_ratios": pipe.recipe.sharding.splits,
             "splits": {s: {"documents": v["documents"]} for s, v in stats["splits"].items()},
             "parts": parts, "totals": totals}
    listed = {p["path"] for p in parts}
    for f in sorted((pipe.output / "documents").glob("part_*")):
        if f"documents/{f.name}" not in listed:
            f.unlink()
    atomic_write_json(pipe.output / DOCUMENTS_INDEX, index)
    write_version(pipe.output)
    stats["documents_output"] = totals
    stats["ids"] = {"duplicated": _duplicate_ids(pipe, console)}
    atomic_write_json(pipe.output / "stats.json", stats)
    result = {"totals": totals}
    records.write(0, key, result)
    return result


def _duplicate_ids(pipe: Pipeline, console: Console) -> int:
    """Documents in the shards whose id another document has too, with one warning line naming a
    few of them and their sources. Only ids from an ``id_field`` can collide (derived ids hash the
    source, path and offset), so without one nothing is read; otherwise the final lineage's ids,
    one row per document (a document spanning rows or repeated by a mixture weight is one)."""
    if not any(getattr(src, "id_field", None) for src in pipe.sources.values()):
        return 0
    cols = ["doc_id", "source_name", "source_uri", "offset"]
    try:
        docs = read_lineage(pipe.output, columns=cols).group_by(cols).aggregate([])
    except CorpusforgeError:  # no lineage tables: nothing to compare
        return 0
    per_id = docs.group_by("doc_id").aggregate([("source_name", "count"), ("source_name", "distinct")])
    dup = per_id.filter(pc.greater(per_id["source_name_count"], 1)).sort_by("doc_id")
    if not dup.num_rows:
        return 0
    n = pc.sum(dup["source_name_count"]).as_py() - dup.num_rows
    examples = "; ".join(f"{r['doc_id']!r} in {', '.join(sorted(r['source_name_distinct']))}"
                         for r in dup.slice(0, 3).to_pylist())
    console.print(f"warning: {n:,} documents reuse an id another document has ({dup.num_rows:,} ids, e.g. {examples}); "
                  "`trace --doc-id` finds them all: make ids unique with id_prefix: \"{source}/\" on the sources",
                  highlight=False, soft_wrap=True, markup=False)
    return n


def clean(output: str | os.PathLike[str]) -> None:
    """Remove a corpusforge output folder (or one at an fsspec URL, and its mirror) entirely; a
    folder that is not one, or holds files corpusforge did not write, raises ``OutputRefused``."""
    with output_lock(output, "clean"):
        if is_url(output):
            RemoteOutput(str(output)).clear()
        else:
            remove_output(Path(output).expanduser().resolve())
