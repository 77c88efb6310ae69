"""HuggingFace datasets: a hub dataset by name/config/split (streamed), or a local copy."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorpusforgeError
from corpusforge.extract.base import require
from corpusforge.registry import SOURCES
from corpusforge.sources.base import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Part,
    Refresh,
    RefreshPolicy,
    Source,
    TaskInput,
    check_max_document_bytes,
)
from corpusforge.sources.readers import template_fields, text_of

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext


# How the offline hint says to use a local copy; `corpusforge collect` puts its --local-path in its place.
USE_LOCAL_COPY = "then use `path: DIR` instead of `dataset:` in this source"


def _offline_hint(dataset: str, config: str | None, split: str) -> str:
    cfg = f", {config!r}" if config else ""
    return (
        f"the HuggingFace hub is unreachable (or HF_HUB_OFFLINE is set), so dataset {dataset!r} cannot be "
        f"loaded. Make a local copy where the hub is reachable: python -c \"import datasets; "
        f"datasets.load_dataset({dataset!r}{cfg}, split={split!r}).save_to_disk('DIR')\", {USE_LOCAL_COPY} "
        f"(a folder of parquet/jsonl files also works)."
    )


@SOURCES.register("hf_dataset")
class HFDatasetSource(Source):
    """Rows of a HuggingFace dataset. ``dataset`` (hub id, with ``config``, ``split``, optional
    ``revision``) is streamed, never downloaded whole; ``path`` is a local copy: a
    ``save_to_disk`` folder or a folder of data files. Text from ``text_field`` or ``text_template``;
    ``max_records`` stops early. Other columns become metadata.

    Re-runs (``refresh``, default ``always``): a hub dataset's fingerprint is its commit sha (the
    ``revision`` itself when it is one; else asked of the hub, or read from the local hub cache
    offline); a local copy's is the name, size and mtime of every file under ``path``."""

    def __init__(
        self,
        name: str,
        dataset: str | None = None,
        path: str | None = None,
        config: str | None = None,
        split: str = "train",
        revision: str | None = None,
        text_field: str = "text",
        text_template: str | None = None,
        id_field: str | None = None,
        max_records: int | None = None,
        streaming: bool = True,
        metadata: dict[str, Any] | None = None,
        refresh: Refresh = "always",
        refresh_ttl: str | float | None = None,
        max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES,
    ):
        if (dataset is None) == (path is None):
            raise ValueError("give exactly one of dataset (a hub id) or path (a local copy)")
        if max_records is not None and max_records < 1:
            raise ValueError("max_records must be >= 1")
        self.source_name = name
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        self.dataset, self.path, self.config, self.split = dataset, path, config, split
        self.revision, self.streaming = revision, streaming
        self.text_field, self.text_template, self.id_field = text_field, text_template, id_field
        self.max_records = max_records
        self.extra_metadata = metadata or {}
        self.refresh = RefreshPolicy.of(refresh, refresh_ttl)

    @property
    def uri(self) -> str:
        if self.path:
            return str(Path(self.path).expanduser().resolve())
        return f"hf://datasets/{self.dataset}/{self.config or 'default'}/{self.split}"

    def plan(self, task_bytes: int) -> list[TaskInput]:
        if self.path and not Path(self.path).expanduser().exists():
            raise CorpusforgeError(f"source {self.source_name!r}: path {self.path!r} does not exist")
        return [TaskInput(self.source_name, (Part(self.uri, key=self.uri),))]

    def fingerprints(self, parts: list[Part], work: Path, since: float | None = None) -> list[dict[str, Any]]:
        return [self._fingerprint() for _ in parts]

    def _fingerprint(self) -> dict[str, Any]:
        if self.path:
            root = Path(self.path).expanduser()
            is_dir = root.is_dir()
            listing = []
            for p in sorted(p for p in root.rglob("*") if p.is_file()) if is_dir else [root]:
                st = p.stat()
                listing.append([p.relative_to(root).as_posix() if is_dir else p.name, st.st_size, st.st_mtime_ns])
            return {"files": len(listing), "listing_sha256": hashlib.sha256(orjson.dumps(listing)).hexdigest()}
        assert self.dataset is not None
        if self.revision and re.fullmatch(r"[0-9a-f]{40}", self.revision):
            return {"sha": self.revision}
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        try:
            import huggingface_hub
            import huggingface_hub.constants
        except ImportError:
            return {"sha": None}
        if not offline:
            try:
                return {"sha": huggingface_hub.HfApi().dataset_info(self.dataset, revision=self.revision).sha}
            except Exception:  # noqa: BLE001 - unreachable hub or unknown id: the cache decides, else read says why
                pass
        ref = (Path(huggingface_hub.constants.HF_HUB_CACHE) / f"datasets--{self.dataset.replace('/', '--')}"
               / "refs" / (self.revision or "main"))
        return {"sha": ref.read_text().strip() if ref.is_file() else None}

    def describe_change(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        if "sha" in new:
            return f"revision {str(old.get('sha'))[:12]} → {str(new.get('sha'))[:12]}"
        return f"files under {self.path} changed ({old.get('files')} → {new.get('files')} files)"

    def _rows(self) -> Iterator[dict[str, Any]]:
        datasets = require("datasets", "remote")
        if self.path:
            p = Path(self.path).expanduser()
            if (p / "dataset_dict.json").exists() or (p / "state.json").exists():
                ds = datasets.load_from_disk(str(p))
                if isinstance(ds, datasets.DatasetDict):
                    if self.split not in ds:
                        raise CorpusforgeError(
                            f"source {self.source_name!r}: split {self.split!r} not in {sorted(ds)} at {p}")
                    ds = ds[self.split]
                yield from ds
                return
            yield from datasets.load_dataset(str(p), self.config, split=self.split, streaming=True)
            return
        if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
            raise CorpusforgeError(f"source {self.source_name!r}: {_offline_hint(self.dataset, self.config, self.split)}")
        try:
            ds = datasets.load_dataset(self.dataset, self.config, split=self.split, streaming=self.streaming,
                                       revision=self.revision)
            yield from ds
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise CorpusforgeError(
                f"source {self.source_name!r}: {_offline_hint(self.dataset, self.config, self.split)} ({exc})"
            ) from None

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        key = f"{self.source_name}/{self.uri}"
        used = template_fields(self.text_template) if self.text_template else frozenset()
        for i, row in enumerate(self._rows()):
            if self.max_records is not None and i >= self.max_records:
                return
            fields = dict(row)
            text, why = text_of(fields, self.text_field, self.text_template)
            if text is None:
                ctx.quarantine(f"{self.uri} row {i}", why, None)
                continue
            doc_id = fields.get(self.id_field) if self.id_field else None
            for name in used:  # already in the text
                fields.pop(name, None)
            meta = {**self.extra_metadata, **_jsonable(fields)}
            yield Document(text, str(doc_id) if doc_id is not None else make_doc_id(key, i, text), self.uri, i, meta)


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    """Metadata must be JSON: drop binary columns (images, audio arrays) rather than fail."""
    out = {}
    for k, v in fields.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, dict)) and len(str(v)) < 10_000:
            out[k] = v
    return out
