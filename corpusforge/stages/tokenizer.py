"""The ``tokenizer`` stage, in the driver: train on a proportional sample of every task's curated
text (or load ``tokenizer.path``), store it with its roles, and train or copy the media codebooks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusforge.media.items import text_only
from corpusforge.media.stage import codebooks_intact, prepare_codebooks
from corpusforge.observe.progress import CHARS, counted_texts, to_phase
from corpusforge.observe.stats import TIMING, TaskContext, peak_rss_mb, reset_peak_rss
from corpusforge.recipe import Recipe
from corpusforge.stages.base import DriverRun, Stage, StageBase, first_record, register_stage
from corpusforge.state import CompletionRecords, atomic_write_bytes, file_sha256
from corpusforge.tokenize.encoder import (
    HF_NAME,
    SPM_NAME,
    load_encoder,
    resolve_path,
    stored_name,
    train_to_bytes,
)
from corpusforge.tokenize.manifest import manifest_texts
from corpusforge.tokenize.roles import write_hf_config
from corpusforge.tokenize.special import ROLES

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline


@dataclass
class TokenizerResult:
    """The tokenizer stage's record: the stored file's sha256, vocabulary size, where it came from
    (``trained`` or the path given), its file name and special ids; ``codebooks`` holds what the
    media codebook step adds (a multimodal run)."""

    sha256: str
    vocab_size: int
    source: str
    path: str
    special_ids: dict[str, Any]
    codebooks: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "vocab_size": self.vocab_size, "source": self.source, "path": self.path,
                "special_ids": self.special_ids, **self.codebooks}


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


@register_stage("tokenizer")
class TokenizerStage(StageBase):
    """Train (or load) the run's tokenizer in the driver; a stored one whose sha256 matches its
    record is reused."""

    in_driver = True
    writes_in_driver = True

    def run_driver(self, run: DriverRun, stage: Stage, records: CompletionRecords) -> dict[str, Any]:
        pipe, bar = run.pipe, run.bar
        cfg = pipe.recipe.tokenizer
        name = stored_name(cfg)
        path = pipe.layout.tokenizer(name)
        key = pipe.task_key(stage, 0)
        rec = records.done(0, key)
        started = time.time()
        if (rec is not None and path.exists() and file_sha256(path) == rec["sha256"]
                and pipe.layout.tokenizer_config.exists()
                and (pipe.recipe.media is None or codebooks_intact(pipe.output, rec))):
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
            bar_task = bar.add_task(stage.name, total=None if cfg.manifest else sample_chars(run.results,
                                                                                              cfg.sample_bytes),
                                    **{CHARS: True})
            texts = manifest_texts(cfg.manifest, pipe.output, cfg.sample_bytes) if cfg.manifest else training_texts(
                pipe, run.results, cfg.sample_bytes)
            data = train_to_bytes(cfg, counted_texts(texts, bar, bar_task, f"{stage.name} (training)"))
            source = "trained"
        atomic_write_bytes(path, data)
        other = pipe.layout.tokenizer(SPM_NAME if name == HF_NAME else HF_NAME)
        if other.exists():
            other.unlink()  # left by an earlier run of another tokenizer kind
        for stale in (pipe.layout.tokenizer_config, pipe.layout.special_tokens_map):
            stale.unlink(missing_ok=True)  # the stored tokenizer's roles are resolved afresh
        tok = open_tokenizer(pipe.recipe, path) if not cfg.path else enc
        special = tok.special
        write_hf_config(pipe.output, special, name == HF_NAME, pipe.recipe.sharding.sequence_length)
        result = TokenizerResult(file_sha256(path), tok.vocab_size, source, name, special.to_dict())
        if pipe.recipe.media is not None:
            to_phase(bar, bar_task, f"{stage.name} (codebooks)")
            result.codebooks = codebook_step(pipe)
        record = result.to_record()
        record["peak_rss_mb"] = peak_rss_mb()
        record[TIMING] = [started, time.time()]
        records.write(0, key, record)
        read = next(t.completed for t in bar.tasks if t.id == bar_task) or 1
        bar.update(bar_task, description=stage.name, total=read, completed=read)
        return record

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return first_record(records)


def _last_curate_chars(results: dict[str, list[dict[str, Any]]]) -> list[int]:
    """The characters each task's last curation kept."""
    last_curate = [name for name in results if name.startswith("curate")][-1]
    return [r["steps"][-1]["chars_out"] for r in results[last_curate]]


def sample_chars(results: dict[str, list[dict[str, Any]]], budget: int) -> int:
    """The characters ``training_texts`` reads: the budget, or all the curated text if less."""
    return min(budget, sum(_last_curate_chars(results)))


def training_texts(pipe: Pipeline, results: dict[str, list[dict[str, Any]]], budget: int) -> Iterator[str]:
    """Curated text for tokenizer training: the same share of every task, up to ``budget`` chars."""
    task_chars = _last_curate_chars(results)
    total = sum(task_chars) or 1
    share = min(1.0, budget / total)
    for t, chars in enumerate(task_chars):
        ctx = TaskContext("tokenizer", t, pipe.output)
        taken, limit = 0, share * chars
        for text in task_texts(pipe, t, ctx):
            if taken >= limit:
                break
            taken += len(text)
            yield text


def task_texts(pipe: Pipeline, task: int, ctx: TaskContext) -> Iterator[str]:
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


def codebook_step(pipe: Pipeline) -> dict[str, Any]:
    """Train or copy the media codebooks beside the tokenizer; files that fail to decode are
    quarantined under the tokenizer stage."""
    ctx = TaskContext("tokenizer", 0, pipe.output)

    def docs_of_tasks():
        for t in range(len(pipe.plan)):
            yield pipe.final_documents(t, TaskContext("tokenizer", t, pipe.output))[0]

    result = prepare_codebooks(pipe.recipe.media, pipe.output, docs_of_tasks(), pipe.recipe.seed,
                               lambda where, why: ctx.quarantine(where, why))
    ctx.flush()
    return result
