"""The recipe: sources, ordered steps, tokenizer, sharding and output, validated up front.

A recipe is YAML or the same objects in Python. Presets (``small``, ``production``,
``multimodal``) supply defaults that the recipe's own values override; ``multimodal`` also turns
on the ``media`` section.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from corpusforge.config import build, format_validation_error
from corpusforge.embeddings.config import EmbeddingsConfig
from corpusforge.errors import RecipeError
from corpusforge.redact_urls import redact_secrets
from corpusforge.registry import SHARD_FORMATS, SOURCES, STEPS

MB = 1_000_000

PRESETS: dict[str, dict[str, Any]] = {
    # Shard sizes are the seeds' (100 MB / 1 GB / 500 MB).
    "small": {
        "sharding": {"max_shard_bytes": 100 * MB, "sequence_length": 2048},
        "tokenizer": {"vocab_size": 32_000},
    },
    "production": {
        "sharding": {"max_shard_bytes": 1000 * MB, "sequence_length": 4096},
        "tokenizer": {"vocab_size": 64_000},
        "output": {"audit": True},
    },
    "multimodal": {
        "sharding": {"max_shard_bytes": 500 * MB, "sequence_length": 4096},
        "tokenizer": {"vocab_size": 32_000},
        "media": {},
    },
}
DEFAULT_STEPS: list[dict[str, Any]] = [
    {"type": "normalize"},
    {"type": "quality_thresholds"},
    {"type": "exact_dedup"},
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenizerConfig(_Strict):
    """Train a tokenizer on the curated text, or load one from ``path`` (a local tokenizer.json,
    SentencePiece ``.model`` or saved ``transformers`` tokenizer folder) with its own special tokens.

    ``bos``/``eos``/``pad``/``unk`` name the token of each role (``auto``: the tokenizer's own; null:
    none; no pad appends ``<|pad|>``). ``special_tokens: rtdlm`` asks for the 16 fixed special
    tokens (the default for trained tokenizers): a loaded tokenizer lacking some gets them appended."""

    path: str | None = None
    special_tokens: Literal["auto", "rtdlm"] = Field(
        "auto", description="auto: a loaded tokenizer's own special tokens (trained ones: rtdlm); rtdlm: the 16 "
        "fixed special tokens, appended to a loaded tokenizer that lacks them")
    bos: str | None = Field("auto", description="the BOS token (auto: the tokenizer's; null: none, documents "
                            "are framed doc EOS)")
    eos: str | None = Field("auto", description="the EOS token (auto: the tokenizer's); every run needs one")
    pad: str | None = Field("auto", description="the padding token (auto: the tokenizer's; null or one shared "
                            "with BOS/EOS: <|pad|> is appended)")
    unk: str | None = Field("auto", description="the unknown token (auto: the tokenizer's)")
    type: Literal["bpe", "unigram", "wordpiece", "sentencepiece_unigram", "sentencepiece_bpe"] = "bpe"
    manifest: str | None = Field(None, description="train on a multi-corpus manifest (YAML) instead of the curated text")
    vocab_size: int = Field(32_000, ge=300, le=1_000_000)
    min_frequency: int = Field(2, ge=1)
    sample_bytes: int = Field(200 * MB, gt=0, description="at most this much text is used for training")
    extra_special_tokens: list[str] = Field(default_factory=list)


class ShardingConfig(_Strict):
    """How token sequences are packed and written."""

    format: str = Field("safetensors", description="a registered shard format (SHARD_FORMATS): safetensors, npy, "
                        "parquet, megatron, webdataset, or one a module or plugin registers")
    compression: Literal["none", "zstd", "gzip", "lz4"] = Field(
        "none", description="whole-file compression of the formats that take it (safetensors, npy); the loader "
        "reads it back")
    max_tokens_per_shard: int | None = Field(None, ge=1, description="token slots (padding included) per shard")
    shuffle: bool = Field(False, description="rewrite each split's rows in one seeded global order at index time")
    mixture: dict[str, float] = Field(
        default_factory=dict, description="per-source weights: 2.0 writes each document twice, 0.5 half of them")
    max_records: dict[str, int] = Field(
        default_factory=dict, description="per-source cap: exactly N documents of that source (a seeded sample by "
        "document id), taken before mixture weights")
    sequence_length: int = Field(2048, ge=8, le=1_048_576)
    max_shard_bytes: int = Field(100 * MB, ge=10_000, description="bytes of samples per shard (alias: "
                                 "max_shard_size_bytes)")
    splits: dict[str, float] = Field(default_factory=lambda: {"train": 0.98, "val": 0.01, "test": 0.01})
    split_by: str | None = Field(None, description="a metadata key (e.g. title): documents sharing its value go to "
                                 "one split, the splits balanced by document count (shards/group_split.py)")
    encode_batch_bytes: int = Field(2 * MB, ge=1000, description="text handed to one encode_batch call")
    packing: Literal["concat", "pad", "truncate"] = Field(
        "concat", description="concat: documents back to back, cut into windows; pad: rows per document; "
        "truncate: one row per document, the rest counted as truncated_tokens")
    position_ids: bool = Field(False, description="write position_ids restarting at every document")
    document_ids: bool = Field(False, description="write document_ids numbering documents inside a row")
    mask_special: list[str] = Field(
        default_factory=lambda: ["bos", "pad"], description="special tokens whose labels are -100: roles (bos, "
        "eos, pad, unk) or token strings such as <IMG>; padding always is. EOS keeps its label by default")
    token_dtype: Literal["int32", "uint16"] = Field(
        "int32", description="how input_ids are stored: uint16 halves them where every id is below 65,536")

    @field_validator("format")
    @classmethod
    def _format_registered(cls, v: str) -> str:
        if v not in SHARD_FORMATS:
            raise ValueError(f"unknown shard format; registered: {', '.join(map(repr, SHARD_FORMATS.names()))}")
        return v

    @model_validator(mode="after")
    def _compression_fits_format(self) -> ShardingConfig:
        fmt = SHARD_FORMATS.get(self.format, where="sharding.format")
        if self.compression != "none" and not fmt.compressible:
            takes = [n for n in SHARD_FORMATS.names() if SHARD_FORMATS.get(n).compressible]
            raise ValueError(f"compression {self.compression!r} does not apply to format {self.format!r}: "
                             f"{fmt.no_compression_reason or 'its files are not compressible'}; formats that take "
                             f"it: {', '.join(takes)}")
        return self

    @field_validator("mixture")
    @classmethod
    def _weights_not_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if w < 0}
        if bad:
            raise ValueError(f"mixture weights must be >= 0, got {bad}")
        return v

    @field_validator("max_records")
    @classmethod
    def _caps_not_negative(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if n < 0}
        if bad:
            raise ValueError(f"max_records must be >= 0, got {bad}")
        return v

    @field_validator("splits")
    @classmethod
    def _splits_sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one split is required, e.g. {train: 1.0}")
        for name, ratio in v.items():
            if not name.isidentifier():
                raise ValueError(f"split name {name!r} must be a plain identifier")
            if ratio < 0:
                raise ValueError(f"split {name!r} has a negative ratio {ratio}")
        if abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"split ratios must sum to 1, got {sum(v.values())}")
        return v


_LATER_SHARDING_DEFAULTS: dict[str, Any] = {
    "packing": "concat", "position_ids": False, "document_ids": False, "compression": "none",
    "max_tokens_per_shard": None, "shuffle": False, "mixture": {}, "max_records": {}, "token_dtype": "int32",
    "mask_special": ["bos", "pad"], "split_by": None,
}  # fmt: skip
_LATER_TOKENIZER_DEFAULTS: dict[str, Any] = {"special_tokens": "auto", "bos": "auto", "eos": "auto", "pad": "auto",
                                             "unk": "auto"}


class MediaConfig(_Strict):
    """Media into tokens (the ``multimodal`` preset sets it): ``files`` sources hand media on as
    documents, the tokenizer stage trains one VQ codebook per modality found (or loads
    ``codebooks``), and the shards interleave text and media codes (see docs/media.md)."""

    codebooks: dict[Literal["image", "audio", "video"], str] = Field(
        default_factory=dict, description="modality -> codebook folder to load instead of training one")
    codebook_size: int = Field(1024, ge=2, le=1_000_000, description="codes per trained codebook")
    train_files: int = Field(2000, ge=1, description="at most this many files per modality train its codebook")
    iterations: int = Field(20, ge=1, description="k-means iterations")
    image_size: int = Field(224, ge=16)
    patch_size: int = Field(16, ge=2)
    audio_sample_rate: int = Field(16_000, ge=1000)
    audio_features: Literal["log_mel", "mfcc"] = "log_mel"
    n_mels: int = Field(80, ge=8)
    n_mfcc: int = Field(13, ge=2)
    video_sampling: Literal["uniform", "fps"] = Field(
        "uniform", description="uniform: max_video_frames spread over the clip; fps: video_fps frames a second")
    video_fps: float = Field(1.0, gt=0)
    max_video_frames: int = Field(8, ge=1)
    long_spans: Literal["split", "error"] = Field(
        "split", description="a media span longer than sharding.sequence_length: cut into whole spans of one row "
        "each, or an error naming the document")
    encoders: dict[Literal["image", "audio"], str] = Field(
        default_factory=dict, description="modality -> local transformers model folder (CLIP/ViT, Whisper/"
        "Wav2Vec2) whose pooled embeddings are written beside the shards")

    @model_validator(mode="after")
    def _patch_fits(self) -> MediaConfig:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        return self

    def features(self) -> dict[str, Any]:
        """The feature options a codebook records and encoding reuses."""
        return self.model_dump(include={"image_size", "patch_size", "audio_sample_rate", "audio_features", "n_mels",
                                        "n_mfcc", "video_sampling", "video_fps", "max_video_frames"})


DOCUMENT_FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet")


class OutputConfig(_Strict):
    """Where the output goes and what it holds besides the shards (docs/recipe.md#output)."""

    path: str = "corpusforge-output"
    documents: Literal["none", "jsonl", "jsonl.gz", "jsonl.zst", "parquet"] = Field(
        "none", description="also write the kept documents (id, text, source, offset, metadata) under documents/; "
        "a curate-only run defaults to jsonl.zst")
    shards: bool = Field(True, description="false (or tokenizer: null): a curate-only run, documents and no shards")
    part_bytes: int = Field(256 * MB, ge=1000, description="a documents part file holds about this many "
                            "uncompressed bytes of records before the next one starts")
    audit: bool = False


class ExecutorConfig(_Strict):
    """Where tasks run; none of this changes the output (it is outside the fingerprint), except task_bytes."""

    kind: Literal["local", "ray", "spark"] = Field("local", description="local: a process pool; ray: Ray tasks; "
                                                   "spark: Spark tasks")
    address: str | None = Field(None, description="ray: cluster address (auto, ray://host:10001, host:port), "
                                "none starts a local Ray instance; spark: the master (local[4], spark://host:7077, "
                                "yarn, k8s://https://host), none is spark-submit's or local[workers]")
    max_retries: int = Field(3, ge=0, description="ray, spark: re-runs of a task whose worker process or node died")
    workers: int | None = Field(None, ge=1, description="processes; default: all cores")
    task_bytes: int = Field(4 * MB, ge=1000, description="decompressed input bytes per task (files are grouped or "
                            "split; compressed sizes are read from gzip/zstd headers or estimated)")


class MlflowConfig(_Strict):
    """Log the run to MLflow (``pip install 'corpusforge[tracking]'``)."""

    enabled: bool = False
    tracking_uri: str | None = Field(None, description="default: sqlite:///<output>/mlflow.db")
    experiment: str = "corpusforge"


class WandbConfig(_Strict):
    """Log the run to Weights & Biases; ``offline`` writes a local run folder under the output."""

    enabled: bool = False
    project: str = "corpusforge"
    mode: Literal["offline", "online"] = "offline"


class TrackingConfig(_Strict):
    """Experiment trackers told about the run at its end (params, metrics, card and stats as artifacts)."""

    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)


class CardConfig(_Strict):
    """What the data card (``README.md``) says that the run cannot know."""

    license: str | None = Field(None, description="SPDX/HF license id; default: from the sources' metadata")
    pretty_name: str | None = Field(None, description="default: the recipe name")
    description: str | None = None


_NOT_IN_FINGERPRINT = {"workers", "kind", "address", "max_retries"}
_LATER_OUTPUT_DEFAULTS: dict[str, Any] = {"shards": True, "part_bytes": 256 * MB}


class Recipe(_Strict):
    """A validated recipe. ``steps`` and ``sources`` keep their plain-dict form (hashable, printable)."""

    name: str = "corpusforge"
    preset: Literal["small", "production", "multimodal"] | None = None
    seed: int = 0
    sources: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=lambda: copy.deepcopy(DEFAULT_STEPS))
    tokenizer: TokenizerConfig | None = Field(
        default_factory=TokenizerConfig, description="null: a curate-only run (documents, no tokenizer, no shards)")
    sharding: ShardingConfig = Field(default_factory=ShardingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    media: MediaConfig | None = None
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    card: CardConfig = Field(default_factory=CardConfig)
    embeddings: EmbeddingsConfig | None = Field(None, description="embed the curated documents (a stage after curation)")
    max_quarantine_fraction: float = Field(
        0.9, ge=0, le=1, description="a run fails after curation when more than this share of the records read "
        "was quarantined (documents lost / documents read + lost); a run that reads no document always fails")

    @model_validator(mode="after")
    def _has_sources(self, info: ValidationInfo) -> Recipe:
        # A draft (``Recipe.from_preset``, the Python API) gets its sources later; a run needs one.
        if not self.sources and not (info.context or {}).get("draft"):
            raise ValueError("sources: at least one source is required, e.g. [{type: files, path: data/}]")
        return self

    @model_validator(mode="after")
    def _curate_only_fits(self) -> Recipe:
        if not self.curate_only:
            return self
        if self.media is not None:
            raise ValueError("media needs a tokenizer and shards: a curate-only run (tokenizer: null or "
                             "output.shards: false) cannot take a media section")
        if self.output.documents == "none":
            self.output.documents = "jsonl.zst"  # what a curate-only run is for; zstd: 4x cheaper than gzip -6
        return self

    @property
    def curate_only(self) -> bool:
        """True when the run writes the kept documents and no tokenizer or shards."""
        return self.tokenizer is None or not self.output.shards

    @classmethod
    def from_preset(cls, preset: Literal["small", "production", "multimodal"] | None = None,
                    **sections: Any) -> Recipe:
        """A recipe from a preset and recipe sections as keyword arguments (``tokenizer=None``,
        ``steps=[...]``); sources may come later (``corpusforge.Pipeline.add_source``)."""
        return load_recipe({**({"preset": preset} if preset else {}), **sections}, draft=True)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Recipe:
        """The recipe in a YAML file, relative paths resolved against its folder."""
        return load_recipe(path, draft=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """A recipe from its dict form (as in YAML), presets merged."""
        return load_recipe(data, draft=True)

    @model_validator(mode="after")
    def _components_exist(self) -> Recipe:
        # Build every step and source once now, so a bad name or value fails before any work.
        self.build_steps()
        self.build_sources()
        return self

    def build_steps(self) -> list[Any]:
        return [build(STEPS, dict(s), f"steps[{i}]") for i, s in enumerate(self.steps)]

    @model_validator(mode="after")
    def _mixture_names_sources(self) -> Recipe:
        names = {s.get("name", f"source{i}") for i, s in enumerate(self.sources)}
        for option in ("mixture", "max_records"):
            unknown = sorted(set(getattr(self.sharding, option)) - names)
            if unknown:
                raise ValueError(f"sharding.{option} names unknown sources {unknown}; sources: {sorted(names)}")
        return self

    def build_sources(self) -> list[Any]:
        names: set[str] = set()
        out = []
        for i, s in enumerate(self.sources):
            spec = {"type": "files", **s}
            spec.setdefault("name", f"source{i}")
            if self.media is not None and spec["type"] == "files":
                spec.setdefault("media", "pass")
            if spec["name"] in names:
                raise RecipeError(f"sources[{i}].name: {spec['name']!r} is used twice; names must be unique")
            names.add(spec["name"])
            out.append(build(SOURCES, spec, f"sources[{i}]"))
        return out

    def fingerprint(self) -> str:
        """Hash of everything that determines the output (not where the input is or the output goes,
        not how many workers)."""
        # Tracking, the card's wording and the quarantine limit describe the run; they change no shard byte.
        return fingerprint_of(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        """The recipe as ``recipe.yaml`` stores it: secrets in URLs redacted (``redact_urls``), so a
        copy kept beside the shards holds no API key; the fingerprint is of the real recipe."""
        data = self.model_dump(mode="json", exclude={"media"} if self.media is None else None)
        return yaml.safe_dump(redact_secrets(data), sort_keys=False)


def fingerprint_of(dumped: dict[str, Any]) -> str:
    """``Recipe.fingerprint`` of a recipe's ``model_dump(mode="json")``, also of one combined from
    two (a tokenize-only run over a curate-only output names the one-shot recipe it equals)."""
    data = copy.deepcopy(dumped)
    data.pop("tracking", None)
    data.pop("card", None)
    data.pop("max_quarantine_fraction", None)
    data["output"].pop("path", None)
    for key in _NOT_IN_FINGERPRINT:
        data["executor"].pop(key, None)
    # Where the input lives is not what it is: the same files in another folder give the same
    # hash (and shards). Their content and root-relative layout enter the version record and
    # every task key through the plan, so moved or changed input is still noticed.
    data["sources"] = [{k: v for k, v in s.items() if k != "path"} for s in data["sources"]]
    # Options added after the first release enter the hash only when set, so recipes that do
    # not use them keep their fingerprint (and byte-identical shards, which carry it).
    for key, default in _LATER_SHARDING_DEFAULTS.items():
        if data["sharding"].get(key) == default:
            del data["sharding"][key]
    if data.get("embeddings") is None:
        data.pop("embeddings", None)
    if data["tokenizer"] is not None:
        if data["tokenizer"].get("manifest") is None:
            data["tokenizer"].pop("manifest", None)
        for key, default in _LATER_TOKENIZER_DEFAULTS.items():
            if data["tokenizer"].get(key) == default:
                del data["tokenizer"][key]
    if data.get("media") is None:
        data.pop("media", None)
    for key, default in _LATER_OUTPUT_DEFAULTS.items():
        if data["output"].get(key) == default:
            del data["output"][key]
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


# Recipe keys that name a local file or folder, in sources, steps, the tokenizer and embeddings.
_SOURCE_PATH_KEYS = ("path", "url_file", "media_roots")
_STEP_PATH_KEYS = ("model_path", "reverse_model_path", "index_dir", "counts_dir", "cache_path")
# Keys that may also hold a name that is not a path (a model id): resolved only where the file exists.
_MAYBE_PATH_KEYS = ("model", "tokenizer")


def _rebased(value: Any, base_dir: Path, only_existing: bool = False) -> Any:
    """``value`` (a path or a list of them) with each relative local path joined to ``base_dir``;
    URLs, absolute and ``~`` paths are kept. ``sqlite:///relative.db`` is a relative path too."""
    if isinstance(value, list):
        return [_rebased(v, base_dir, only_existing) for v in value]
    if not isinstance(value, str) or not value:
        return value
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        rel = value[len("sqlite:///"):]
        return f"sqlite:///{base_dir / rel}" if rel and not rel.startswith(":memory:") else value
    if "://" in value or os.path.isabs(os.path.expanduser(value)) or re.match(r"[\w.-]+@[\w.-]+:", value):
        return value  # a URL, an absolute path, or an scp-like git remote (git@host:org/repo)
    joined = base_dir / value
    return str(joined) if not only_existing or joined.exists() else value


def _resolve_relative_paths(data: dict[str, Any], base_dir: Path) -> None:
    """Resolve every relative path of a recipe file against its folder, wherever the run starts:
    sources' ``path``/``url_file``/``media_roots`` and SQLite ``url``, steps' model and index
    folders, ``tokenizer.path``/``manifest``, ``embeddings.model``, media codebooks and encoders."""
    for src in data.get("sources") or []:
        if isinstance(src, dict):
            for key in _SOURCE_PATH_KEYS:
                if key in src:
                    src[key] = _rebased(src[key], base_dir)
            if isinstance(src.get("url"), str) and src["url"].startswith("sqlite:"):
                src["url"] = _rebased(src["url"], base_dir)
    for step in data.get("steps") or []:
        if isinstance(step, dict):
            for key in _STEP_PATH_KEYS:
                if key in step:
                    step[key] = _rebased(step[key], base_dir)
            for key in _MAYBE_PATH_KEYS:
                if key in step:
                    step[key] = _rebased(step[key], base_dir, only_existing=True)
    for section, keys in (("tokenizer", ("path", "manifest")), ("embeddings", ("model",))):
        part = data.get(section)
        if isinstance(part, dict):
            for key in keys:
                if key in part:
                    part[key] = _rebased(part[key], base_dir, only_existing=section == "embeddings")
    media = data.get("media")
    for key in ("codebooks", "encoders"):
        paths = media.get(key) if isinstance(media, dict) else None
        if isinstance(paths, dict):
            for m, p in paths.items():
                paths[m] = _rebased(p, base_dir)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# Other spellings of recipe options: (section, alias) -> option.
ALIASES = {("sharding", "max_shard_size_bytes"): "max_shard_bytes"}


def _rename_aliases(data: dict[str, Any]) -> None:
    """Rewrite ``ALIASES`` to their option names in place (before presets merge, so the recipe's
    value wins whichever spelling it used); giving both spellings is an error."""
    for (section, alias), name in ALIASES.items():
        part = data.get(section)
        if isinstance(part, dict) and alias in part:
            if name in part:
                raise RecipeError(f"{section}.{alias}: the same option as {section}.{name}; give one of them")
            part[name] = part.pop(alias)


def load_recipe(data: dict[str, Any] | str | os.PathLike[str], draft: bool = False, **overrides: Any) -> Recipe:
    """Validate a recipe given as a dict or a YAML file path; RecipeError names every bad field.

    Relative paths in a YAML file are resolved against the file's directory (``_resolve_relative_paths``).
    ``draft`` accepts a recipe without sources (the Python API adds them before running).
    """
    base_dir: Path | None = None
    if not isinstance(data, dict):
        path = Path(data)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecipeError(f"{path}: recipe file not found") from None
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise RecipeError(f"{path}: a recipe is a mapping with 'sources', 'steps', ...; got {type(data).__name__}")
        base_dir = path.resolve().parent
    data = copy.deepcopy(data)
    _rename_aliases(data)
    preset = data.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise RecipeError(f"preset: value {preset!r} is invalid; allowed: {', '.join(PRESETS)}")
        data = _deep_merge(PRESETS[preset], data)
    for key, value in overrides.items():
        if value is not None:
            section, _, field = key.partition("__")
            data.setdefault(section, {})[field] = value
    if base_dir is not None:
        _resolve_relative_paths(data, base_dir)
    try:
        return Recipe.model_validate(data, context={"draft": draft})
    except ValidationError as err:
        raise RecipeError(format_validation_error(err, "", model=Recipe)) from None
