"""Every path of an output folder, named in one place (see docs/layout.md for the list).

``OutputLayout(root)`` answers "where does X live" for a run, the commands that edit or read a
finished output and the tests; the module constants are the same names relative to the output
(posix strings), for a remote output (``remote.py``) or a listing that has no local folder. The
object does no I/O beyond the ``mkdir`` a caller asks for, so it costs nothing to build one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

# -- names relative to the output folder --------------------------------------------------------
WORK = "_work"  # intermediates of a run: staged documents, step folders, task shards; kept for resume
STATE = "_state"  # completion records and the files that say whose output this is
MARKER = "_state/output.json"  # written first by every run: what makes a folder a corpusforge output
LOCK = "_state/lock"  # flock'ed by the process that drives a run (or erase, card, embed) of the output
TASK_LOCKS = "_state/locks"  # one lock per scheduled task (``run-task``)
PLAN = "_state/plan.json"  # the task plan of the last run: inputs and byte ranges per curate task
FINGERPRINTS = "_state/fingerprints.jsonl"  # inputs' change fingerprints, for incremental runs
SCHEDULE = "_state/schedule.json"  # a scheduled run's stages and tasks (``corpusforge schedule``)
TRACKING = "_state/tracking.json"  # the runs logged for this output, per tracker
ERASE_JOURNAL = "_state/erase/journal.json"  # an erasure's renames, until it is applied
INDEX = "shard_index.json"  # every shard with split, path, samples, tokens and checksum
DOCUMENTS_INDEX = "documents_index.json"  # a curate-only output's index (its shard_index.json)
STATS = "stats.json"  # what a run read, dropped, kept and how long each stage took
RECIPE = "recipe.yaml"  # the resolved recipe that wrote the output
VERSION = "version.json"  # content-addressed version record (maintain/version.py)
MANIFEST = "manifest.jsonl"  # one line per input file: source, key, content hash, size
CARD = "README.md"  # the Hugging Face data card
REPORT = "report.html"  # the HTML report with plots
QUARANTINE = "quarantine"  # quarantine/<stage>/task_NNNNNN.jsonl: records that could not be read
AUDIT = "audit"  # audit/<stage>/task_NNNNNN.jsonl.zst: every drop and change, with its reason
ERASURES = "audit/erasures.jsonl"  # one line per erasure; kept when another recipe takes the output
DOCUMENTS = "documents"  # documents/part_*: the kept documents (``output.documents``)
LINEAGE = "lineage"  # lineage/<split>/shard_NNNNN.parquet: the documents in each shard row
DOCUMENTS_LINEAGE = "lineage/documents"  # a curate-only output's lineage: part and row of every document
EMBEDDINGS = "embeddings"  # sentence embeddings (and media encoders' vectors) with their index
EMBEDDINGS_INDEX = "embeddings/index.json"
CODEBOOKS = "codebooks"  # codebooks/<modality>/: the VQ codebooks the media shards were encoded with
TOKENIZER_HF, TOKENIZER_SPM = "tokenizer.json", "tokenizer.model"  # the stored tokenizer (one of them)
TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP = "tokenizer_config.json", "special_tokens_map.json"
TRACKERS = ("mlflow.db", "mlartifacts", "mlruns", "wandb")  # experiment trackers' local stores, when tracking writes here
JUDGE_CACHE = "llm_judge"  # _work/llm_judge/: the LLM judge's answers, which --fresh keeps
MODEL_HASHES = "model_sha256.json"  # _work/model_sha256.json: content hashes of model folders, cached
UPLOAD_LEDGER = ".corpusforge-uploads.jsonl"  # in the local mirror of a remote output: objects published
LOADER_CACHE = "_loader_cache"  # in the local mirror of a remote output: shards the loader fetched

# What a run writes at the top of its output, besides one folder per split.
OUTPUT_ENTRIES = frozenset({
    WORK, STATE, INDEX, DOCUMENTS_INDEX, STATS, RECIPE, VERSION, MANIFEST, TOKENIZER_HF, TOKENIZER_SPM,
    TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, CARD, REPORT, QUARANTINE, DOCUMENTS, LINEAGE, AUDIT, EMBEDDINGS,
    CODEBOOKS, *TRACKERS,
})


def staged_stage(segment: int) -> str:
    """The name of the curate stage of ``segment`` (``curate``, ``curate_1``...): its staging folder and records."""
    return "curate" if segment == 0 else f"curate_{segment}"


def record_name(stage: str, task: int) -> str:
    """``_state/<stage>/NNNNNN.json``: a task's completion record relative to the output (a remote key)."""
    return f"{STATE}/{stage}/{task:06d}.json"


def task_file(task: int, suffix: str) -> str:
    """``task_NNNNNN<suffix>``: a per-task file of a stage (staged documents, signatures, quarantine)."""
    return f"task_{task:06d}{suffix}"


def document_part_name(task: int, part: int, fmt: str) -> str:
    """``part_000003.jsonl.gz`` for a task's first part, ``part_000003_0001.jsonl.gz`` after it:
    sorted names are document order, and a run whose tasks fit one part keeps the old names."""
    return f"part_{task:06d}.{fmt}" if part == 0 else f"part_{task:06d}_{part:04d}.{fmt}"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary of ``atomic_path`` (``.name.tmp-xxxxxxxx``): never output."""
    return name.startswith(".") and ".tmp-" in name


def temporary(path: Path, token: str | None = None) -> Path:
    """A temporary name beside ``path`` (``.name.tmp-xxxxxxxx``) that ``is_temporary`` recognises."""
    return path.with_name(f".{path.name}.tmp-{token or uuid.uuid4().hex[:8]}")


def journal_temporary(path: Path, token: str) -> Path:
    """A file an erasure writes beside ``path`` (``.name.erase-<token>``), renamed onto it by the journal."""
    return path.with_name(f".{path.name}.erase-{token}")


def is_journal_temporary(name: str) -> bool:
    """Whether ``name`` is a file an erasure wrote before its journal (``journal_temporary``)."""
    return name.startswith(".") and ".erase-" in name


class OutputLayout:
    """The paths of the output folder ``root``: one property or method per file or folder a run,
    ``erase``, ``card``, ``embed`` or the loader reads or writes there."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"OutputLayout({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputLayout) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # -- _state/: records, marker, lock --------------------------------------------------------
    @property
    def state(self) -> Path:
        """``_state/``: completion records and the marker, plan and lock of the output."""
        return self.root / STATE

    def records(self, stage: str) -> Path:
        """``_state/<stage>/``: the completion records of one stage."""
        return self.state / stage

    def record(self, stage: str, task: int) -> Path:
        """``_state/<stage>/NNNNNN.json``: the completion record of one task (its key and result)."""
        return self.root / record_name(stage, task)

    @property
    def marker(self) -> Path:
        """``_state/output.json``: names the recipe that owns the output; written first by every run."""
        return self.root / MARKER

    @property
    def lock(self) -> Path:
        """``_state/lock``: the ``flock`` of the driver of a run, ``erase``, ``card`` or ``embed``."""
        return self.root / LOCK

    def task_lock(self, name: str) -> Path:
        """``_state/locks/<name>``: the lock of one scheduled task."""
        return self.root / TASK_LOCKS / name

    @property
    def plan(self) -> Path:
        """``_state/plan.json``: the curate tasks (inputs, byte ranges) of the last run."""
        return self.root / PLAN

    @property
    def fingerprints(self) -> Path:
        """``_state/fingerprints.jsonl``: change fingerprints of the inputs, for incremental runs."""
        return self.root / FINGERPRINTS

    @property
    def schedule(self) -> Path:
        """``_state/schedule.json``: a scheduled run's stages and tasks."""
        return self.root / SCHEDULE

    @property
    def tracking(self) -> Path:
        """``_state/tracking.json``: the tracker runs logged for this output."""
        return self.root / TRACKING

    @property
    def erase_journal(self) -> Path:
        """``_state/erase/journal.json``: the renames of an erasure not yet applied."""
        return self.root / ERASE_JOURNAL

    # -- _work/: intermediates -----------------------------------------------------------------
    @property
    def work(self) -> Path:
        """``_work/``: staged documents, corpus-wide steps' folders, task shards and lineage."""
        return self.root / WORK

    def staging(self, segment: int) -> Path:
        """``_work/curate[_k]/``: the staged documents of curate segment ``segment``."""
        return self.work / staged_stage(segment)

    def staged(self, segment: int, task: int) -> Path:
        """``_work/curate[_k]/task_NNNNNN.parquet``: the documents task ``task`` of ``segment`` kept."""
        return self.staging(segment) / task_file(task, ".parquet")

    def step_dir(self, step: str, boundary: int) -> Path:
        """``_work/<step>_<k>/``: the folder of the ``boundary``-th corpus-wide step (signatures, decisions)."""
        return self.work / f"{step}_{boundary}"

    @classmethod
    def of_step(cls, step_dir: Path) -> OutputLayout:
        """The layout of the output whose ``_work/`` holds the corpus-wide step folder ``step_dir``."""
        return cls(Path(step_dir).parent.parent)

    @staticmethod
    def step_segment(step_dir: Path) -> int:
        """The curate segment whose staged documents a step folder ``<step>_<k>`` signed: ``k``."""
        return int(Path(step_dir).name.rsplit("_", 1)[1])

    def staged_of_step(self, step_dir: Path, task: int) -> Path:
        """The staged documents of ``task`` that the corpus-wide step at ``step_dir`` signed: those of
        the segment the step ends (``_work/<step>_<k>`` signed ``_work/curate[_k]``), row for row."""
        return self.staged(self.step_segment(step_dir), task)

    @property
    def mixture(self) -> Path:
        """``_work/mixture.json``: the per-source caps a mixture recipe computed."""
        return self.work / "mixture.json"

    @property
    def task_shards(self) -> Path:
        """``_work/shards/``: shard parts of every shard task, by split, before the index names them."""
        return self.work / "shards"

    def task_shard_prefix(self, split: str, task: int) -> Path:
        """``_work/shards/<split>/tNNNNNN``: the prefix of task ``task``'s parts (``_0000.safetensors``...)."""
        return self.task_shards / split / f"t{task:06d}"

    def task_shard_part(self, split: str, task: int, k: int, suffix: str) -> Path:
        """``_work/shards/<split>/tNNNNNN_KKKK<suffix>``: the ``k``-th part task ``task`` wrote to ``split``."""
        return self.prefix_part(self.task_shard_prefix(split, task), k, suffix)

    @staticmethod
    def prefix_part(prefix: Path, k: int, suffix: str) -> Path:
        """``<prefix>_KKKK<suffix>``: the ``k``-th part a shard writer with ``prefix`` writes (task or shuffled)."""
        return prefix.with_name(f"{prefix.name}_{k:04d}{suffix}")

    @property
    def shuffled(self) -> Path:
        """``_work/shuffled/``: globally shuffled shards, by split (``sharding.shuffle: global``)."""
        return self.work / "shuffled"

    def shuffled_prefix(self, split: str) -> Path:
        """``_work/shuffled/<split>/s000000``: the prefix of a split's globally shuffled parts."""
        return self.shuffled / split / "s000000"

    def shuffle_unpacked(self, split: str) -> Path:
        """``_work/shuffled/<split>/.unpacked/``: the task parts' rows unpacked while a split is shuffled."""
        return self.unpacked_beside(self.shuffled_prefix(split))

    @staticmethod
    def unpacked_beside(prefix: Path) -> Path:
        """``<prefix's folder>/.unpacked/``: where a shuffle writing parts at ``prefix`` unpacks its input rows."""
        return Path(prefix).parent / ".unpacked"

    @property
    def task_lineage_dir(self) -> Path:
        """``_work/lineage/``: each shard task's lineage, by split, before the index renumbers it."""
        return self.work / LINEAGE

    def task_lineage(self, split: str, task: int) -> Path:
        """``_work/lineage/<split>/tNNNNNN.parquet``: the rows of task ``task``'s parts in ``split``."""
        return self.task_lineage_dir / split / f"t{task:06d}.parquet"

    @property
    def lineage_spills(self) -> Path:
        """``_work/lineage_spill/``: shuffled lineage bucketed by final shard, deleted when done."""
        return self.work / "lineage_spill"

    def lineage_spill(self, split: str) -> Path:
        """``_work/lineage_spill/<split>/``: one split's spilled lineage buckets."""
        return self.lineage_spills / split

    def group_split(self, split_by: str, key: str) -> Path:
        """``_work/splits/<split_by>_<key>.json``: the split of each group (``sharding.split_by``)."""
        return self.work / "splits" / f"{split_by}_{key}.json"

    def source_work(self, source: str) -> Path:
        """``_work/sources/<source>/``: what a source caches while fingerprinting its inputs."""
        return self.work / "sources" / source

    @property
    def model_hashes(self) -> Path:
        """``_work/model_sha256.json``: cached content hashes of local model folders."""
        return self.work / MODEL_HASHES

    @property
    def judge_cache(self) -> Path:
        """``_work/llm_judge/``: the LLM judge's answers, which ``--fresh`` keeps."""
        return self.work / JUDGE_CACHE

    @property
    def work_embeddings(self) -> Path:
        """``_work/embeddings/``: per-task embedding parts before ``layout: splits`` merges them."""
        return self.work / EMBEDDINGS

    def shard_intermediates(self) -> list[Path]:
        """What the shard and index stages keep that copies shard tokens: task shards, shuffled shards,
        task lineage and those stages' records (an erasure deletes them; a later run rebuilds them)."""
        return [self.task_shards, self.shuffled, self.task_lineage_dir, self.records("shards"), self.records("index")]

    # -- published files -----------------------------------------------------------------------
    @property
    def index(self) -> Path:
        """``shard_index.json``: every shard with its split, path, samples, tokens and checksum."""
        return self.root / INDEX

    @property
    def documents_index(self) -> Path:
        """``documents_index.json``: a curate-only output's index of its documents parts."""
        return self.root / DOCUMENTS_INDEX

    @property
    def stats(self) -> Path:
        """``stats.json``: the run's counts, drop reasons, lengths and stage timings."""
        return self.root / STATS

    @property
    def recipe(self) -> Path:
        """``recipe.yaml``: the resolved recipe that wrote the output."""
        return self.root / RECIPE

    @property
    def version(self) -> Path:
        """``version.json``: the content-addressed version record."""
        return self.root / VERSION

    @property
    def manifest(self) -> Path:
        """``manifest.jsonl``: one line per input file (source, key, content hash, size)."""
        return self.root / MANIFEST

    @property
    def card(self) -> Path:
        """``README.md``: the Hugging Face data card."""
        return self.root / CARD

    @property
    def report(self) -> Path:
        """``report.html``: the HTML report with plots."""
        return self.root / REPORT

    def split_dir(self, split: str) -> Path:
        """``<split>/``: the shards of one split."""
        return self.root / split

    @staticmethod
    def shard_name(split: str, n: int, suffix: str) -> str:
        """``<split>/shard_NNNNN<suffix>``: the index's relative path of the ``n``-th shard of ``split``."""
        return f"{split}/shard_{n:05d}{suffix}"

    def shard(self, split: str, n: int, suffix: str) -> Path:
        """``<split>/shard_NNNNN<suffix>``: the ``n``-th shard (or sidecar) of ``split``."""
        return self.root / self.shard_name(split, n, suffix)

    @property
    def lineage(self) -> Path:
        """``lineage/``: one table per shard naming the documents in each of its rows."""
        return self.root / LINEAGE

    def lineage_split(self, split: str) -> Path:
        """``lineage/<split>/``: the lineage tables of one split."""
        return self.lineage / split

    def lineage_table(self, split: str, shard: str) -> Path:
        """``lineage/<split>/shard_NNNNN.parquet``: the lineage of the shard named ``shard`` (any suffix)."""
        return self.lineage_split(split) / f"{Path(shard).name.split('.')[0]}.parquet"

    @property
    def documents(self) -> Path:
        """``documents/``: the kept documents' parts (``output.documents``)."""
        return self.root / DOCUMENTS

    def documents_part(self, task: int, part: int, fmt: str) -> Path:
        """``documents/part_NNNNNN[_KKKK].<fmt>``: the ``part``-th documents part of task ``task``."""
        return self.documents / document_part_name(task, part, fmt)

    @property
    def documents_lineage(self) -> Path:
        """``lineage/documents/``: a curate-only output's lineage, one table per task."""
        return self.root / DOCUMENTS_LINEAGE

    def documents_lineage_part(self, task: int) -> Path:
        """``lineage/documents/part_NNNNNN.parquet``: the part and row of every document of task ``task``."""
        return self.documents_lineage / f"part_{task:06d}.parquet"

    @property
    def quarantine(self) -> Path:
        """``quarantine/``: the records that could not be read, by stage."""
        return self.root / QUARANTINE

    def quarantine_file(self, stage: str, task: int) -> Path:
        """``quarantine/<stage>/task_NNNNNN.jsonl``: one task's quarantined records."""
        return self.quarantine / stage / task_file(task, ".jsonl")

    @property
    def audit(self) -> Path:
        """``audit/``: the audit log of drops and changes, by stage, and the erasure log."""
        return self.root / AUDIT

    def audit_file(self, stage: str, task: int) -> Path:
        """``audit/<stage>/task_NNNNNN.jsonl.zst``: one task's audit records."""
        return self.audit / stage / task_file(task, ".jsonl.zst")

    @property
    def erasures(self) -> Path:
        """``audit/erasures.jsonl``: one record per erasure of this output."""
        return self.root / ERASURES

    def tokenizer(self, name: str = TOKENIZER_HF) -> Path:
        """``tokenizer.json`` (or ``tokenizer.model``, the name ``stored_name`` gives): the stored tokenizer."""
        return self.root / name

    @property
    def tokenizer_config(self) -> Path:
        """``tokenizer_config.json``: the special-token roles for ``transformers``."""
        return self.root / TOKENIZER_CONFIG

    @property
    def special_tokens_map(self) -> Path:
        """``special_tokens_map.json``: the special tokens' strings by role."""
        return self.root / SPECIAL_TOKENS_MAP

    @property
    def embeddings(self) -> Path:
        """``embeddings/``: sentence embeddings by split, media encoders' vectors by modality."""
        return self.root / EMBEDDINGS

    @property
    def embeddings_index(self) -> Path:
        """``embeddings/index.json``: every embeddings part with its rows and checksum."""
        return self.root / EMBEDDINGS_INDEX

    def media_embeddings(self, modality: str) -> Path:
        """``embeddings/<modality>/``: one media encoder's vectors (``media.encoders``)."""
        return self.embeddings / modality

    def media_embeddings_part(self, modality: str, task: int, suffix: str) -> Path:
        """``embeddings/<modality>/part_NNNNNN<suffix>``: task ``task``'s vectors (``.safetensors``) or their ids (``.parquet``)."""
        return self.media_embeddings(modality) / f"part_{task:06d}{suffix}"

    @property
    def codebooks(self) -> Path:
        """``codebooks/``: the VQ codebooks of a multimodal run."""
        return self.root / CODEBOOKS

    def codebook(self, modality: str) -> Path:
        """``codebooks/<modality>/``: one modality's codebook (``codebook.json``, weights)."""
        return self.codebooks / modality

    def tracker(self, name: str) -> Path:
        """``mlflow.db`` (its files in ``mlartifacts/``), ``mlruns/`` or ``wandb/``: a tracker's local store, when it writes into the output."""
        if name not in TRACKERS:
            raise ValueError(f"unknown tracker store {name!r}; one of {', '.join(TRACKERS)}")
        return self.root / name

    @property
    def upload_ledger(self) -> Path:
        """``.corpusforge-uploads.jsonl``: in the local mirror of a remote output, the objects already published."""
        return self.root / UPLOAD_LEDGER

    @property
    def loader_cache(self) -> Path:
        """``_loader_cache/``: in the local mirror of a remote output, the shard files the loader fetched."""
        return self.root / LOADER_CACHE

    # -- names ----------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        """``path`` relative to the output, as the posix string indexes and journals store."""
        return Path(path).relative_to(self.root).as_posix()

    def is_work(self, path: Path) -> bool:
        """Whether ``path`` lies under ``_work/`` (an intermediate, not published)."""
        return Path(path).is_relative_to(self.work)
