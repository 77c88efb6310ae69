"""The media side of a run: codebooks in the tokenizer stage, interleaved ids in the shards stage.

The tokenizer stage trains one codebook per modality found in the curated documents (or copies
the recipe's ``media.codebooks``) into ``<output>/codebooks/<modality>/``. Shard tasks load them,
encode each document as ``text <IMG> codes <IMG_END> text ...`` in the joint vocabulary, and the
index stage records the layout (``media_layout``) in ``shard_index.json``.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge import layout as layout_names
from corpusforge.document import Document
from corpusforge.errors import CorruptInput, RecipeError
from corpusforge.layout import OutputLayout
from corpusforge.media.items import item_name, media_of, open_item, parts_of
from corpusforge.media.sequence import MARKERS, MASK, joint_vocabulary, media_features, media_segments
from corpusforge.media.vq import CONFIG, MODALITIES, WEIGHTS, Codebook
from corpusforge.state import file_sha256

CODEBOOK_DIR = layout_names.CODEBOOKS
SPAN_COUNTERS = ("span_padding", "split_spans", "filled_rows")  # the packer's (corpusforge.shards.packer)
TRAIN_ROWS = 200_000  # feature rows per modality at most (768 floats each: ~600 MB for images)


def codebook_files(output: Path, modality: str) -> dict[str, str]:
    """``{relative path: sha256}`` of one stored codebook."""
    layout = OutputLayout(output)
    folder = layout.codebook(modality)
    return {layout.rel(folder / n): file_sha256(folder / n) for n in (CONFIG, WEIGHTS)}


def codebooks_intact(output: Path, result: dict[str, Any]) -> bool:
    """Whether the codebooks a finished tokenizer stage recorded are still there, unchanged."""
    for info in result.get("codebooks", {}).values():
        for rel, sha in info["files"].items():
            if not (output / rel).exists() or file_sha256(output / rel) != sha:
                return False
    return True


def _training_items(docs_of_tasks: Iterable[Iterable[Document]], limit: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``limit`` media items of each modality, in corpus order."""
    found: dict[str, list[dict[str, Any]]] = {m: [] for m in MODALITIES}
    for docs in docs_of_tasks:
        for doc in docs:
            for item in media_of(doc):
                pool = found.get(item.get("kind", ""))
                if pool is not None and len(pool) < limit:
                    pool.append(item)
    return found


def _spread(rows: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` rows taken evenly over ``rows``."""
    if len(rows) <= n:
        return rows
    return rows[np.linspace(0, len(rows) - 1, n).round().astype(int)]


# The options that shape a codebook's feature vectors, per modality: a loaded codebook must have been
# trained with the recipe's values (the others, video sampling, are the recipe's at encoding).
SHAPING = {"image": ("image_size", "patch_size"), "video": ("image_size", "patch_size"),
           "audio": ("audio_sample_rate", "audio_features", "n_mels", "n_mfcc")}
_CLI_FLAG = {"audio_features": "--audio-features"}


def feature_dim(modality: str, features: dict[str, Any]) -> int:
    """The length of one feature row the options give: patch*patch*3, n_mels or n_mfcc."""
    if modality == "audio":
        return int(features["n_mfcc"] if features["audio_features"] == "mfcc" else features["n_mels"])
    return int(features["patch_size"]) ** 2 * 3


def load_checked(cfg: Any, modality: str) -> Codebook:
    """The recipe's ``media.codebooks.<modality>``, refused with one line (which option, both
    values, how to fix it) when it is not a codebook of that modality or was trained with other
    feature options than the recipe's."""
    where = f"media.codebooks.{modality}"
    path = cfg.codebooks[modality]
    try:
        book = Codebook.load(path)
    except CorruptInput as exc:
        raise RecipeError(f"{where}: {exc}") from None
    if book.modality != modality:
        raise RecipeError(f"{where}: {path!r} is a {book.modality} codebook")
    want = cfg.features()
    defaults = type(cfg)().features()
    for key in SHAPING[modality]:
        if key == "n_mfcc" and want["audio_features"] != "mfcc":
            continue
        had = book.config.get(key, defaults[key])
        if had != want[key]:
            flag = _CLI_FLAG.get(key, "--" + key.replace("_", "-"))
            raise RecipeError(f"{where}: {path!r} was trained with {key} {had!r} but the recipe has media.{key} "
                              f"{want[key]!r}; set media.{key}: {had!r}, or train a codebook with {flag} {want[key]}")
    dim = int(book.centroids.shape[1])
    if dim != feature_dim(modality, want):
        raise RecipeError(f"{where}: {path!r} holds vectors of {dim} values but the recipe's features have "
                          f"{feature_dim(modality, want)}; train a codebook with the recipe's media options")
    return book


def check_codebooks(cfg: Any) -> None:
    """Load and check every codebook the recipe names, before any work (see ``load_checked``)."""
    for modality in cfg.codebooks:
        load_checked(cfg, modality)


def reason_kind(reason: str) -> str:
    """What stats count a failure under: its reason up to the first ``:`` ("cannot decode image")."""
    return reason.split(":")[0].split(" (")[0]


def prepare_codebooks(cfg: Any, output: Path, docs_of_tasks: Iterable[Iterable[Document]], seed: int,
                      quarantine: Callable[[str, str], None]) -> dict[str, Any]:
    """Train (or copy) the codebooks the corpus needs into ``output/codebooks``; what was done.

    A modality is trained from the feature rows of its first ``train_files`` files (at most
    ``TRAIN_ROWS`` rows, taken evenly from every file); video audio tracks train the audio
    codebook too. Files that fail to decode are quarantined, not fatal, and counted by reason in
    ``decode_failures``."""
    features_cfg = cfg.features()
    books = {m: load_checked(cfg, m) for m in cfg.codebooks}
    items = _training_items(docs_of_tasks, cfg.train_files)
    pools: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    files: dict[str, int] = {m: 0 for m in MODALITIES}
    failures: Counter[str] = Counter()
    for modality in MODALITIES:
        if not items[modality] or modality in cfg.codebooks:
            continue
        per_file = max(1, math.ceil(TRAIN_ROWS / len(items[modality])))
        for item in items[modality]:
            try:
                segments = media_features(open_item(item), modality, features_cfg)
            except CorruptInput as exc:
                quarantine(item_name(item), exc.reason)
                failures[reason_kind(exc.reason)] += 1
                continue
            files[modality] += 1
            for m, rows in segments:
                if m not in cfg.codebooks:
                    pools[m].append(_spread(rows, per_file))
    result: dict[str, Any] = {}
    layout = OutputLayout(output)
    for modality in MODALITIES:
        folder = layout.codebook(modality)
        if modality in cfg.codebooks:
            book = books[modality]
            book.save(folder)
            info: dict[str, Any] = {"source": str(cfg.codebooks[modality])}
        elif pools[modality]:
            x = np.concatenate(pools[modality])
            if len(x) < cfg.codebook_size:
                raise RecipeError(
                    f"media.codebook_size: {cfg.codebook_size} codes need at least as many {modality} feature rows; "
                    f"the corpus gives {len(x)} (from {files[modality] or 'video'} files). Lower codebook_size, "
                    f"add {modality} files, or load one with media.codebooks.{modality}")
            book = Codebook.train(modality, x, cfg.codebook_size, seed=seed, iterations=cfg.iterations,
                                  config=features_cfg)
            book.save(folder)
            peak = 1.0 if modality != "audio" else float(x.max() - x.min())
            info = {"source": "trained", "trained_on_files": files[modality], "rows": int(len(x)),
                    **book.reconstruction(x, peak)}
        else:
            if folder.exists():
                shutil.rmtree(folder)  # left by an earlier run whose corpus had this modality
            continue
        info.update(size=book.size, dim=int(book.centroids.shape[1]), files=codebook_files(output, modality))
        result[modality] = info
    out: dict[str, Any] = {"codebooks": result}
    if failures:
        out["decode_failures"] = dict(sorted(failures.items()))
    return out


@lru_cache(maxsize=4)
def _load_books(output: str, stamp: tuple[Any, ...]) -> dict[str, Codebook]:
    layout = OutputLayout(output)
    return {m: Codebook.load(layout.codebook(m)) for m in MODALITIES if (layout.codebook(m) / WEIGHTS).exists()}


def load_codebooks(output: Path) -> dict[str, Codebook]:
    """The run's stored codebooks (cached per process while their files are unchanged)."""
    books = {m: OutputLayout(output).codebook(m) / WEIGHTS for m in MODALITIES}
    stamp = tuple((m, w.stat().st_mtime_ns) for m, w in books.items() if w.exists())
    return _load_books(str(output), stamp)


def media_layout(output: Path, text_vocab: int, codebooks: dict[str, Any] | None = None) -> dict[str, Any]:
    """The joint vocabulary for ``shard_index.json``: text size, per-modality id ranges, marker ids,
    mask values and, given the tokenizer stage's ``codebooks`` record, each codebook's files."""
    layout = joint_vocabulary(text_vocab, load_codebooks(output))
    for m, r in layout["media"].items():
        r["markers"] = list(MARKERS[m])
        r["mask"] = MASK[m]
        if codebooks and m in codebooks:
            r["codebook"] = {"path": f"{CODEBOOK_DIR}/{m}", "files": codebooks[m]["files"]}
    layout["mask"] = dict(MASK)
    return layout


class MediaEncoder:
    """Documents to ids in the joint vocabulary: text through the text tokenizer (one batch call),
    media through the codebooks, in document order. A media item that cannot be decoded is
    quarantined and left out; a document left with nothing is dropped."""

    def __init__(self, tok: Any, output: Path, encoders: dict[str, str] | None = None, sample_rate: int = 16_000,
                 features: dict[str, Any] | None = None):
        self.tok = tok
        self.books = load_codebooks(output)
        self.layout = joint_vocabulary(tok.vocab_size, self.books)
        self.features = features  # the recipe's feature options (None: each codebook's own)
        self.failed = 0
        self.failures: Counter[str] = Counter()  # items left out, by reason
        self.media_tokens = 0
        self.learned: dict[str, Any] = {}
        self.embeddings: dict[str, Any] = {}
        if encoders:
            from corpusforge.media.encoders import EmbeddingRows, LearnedEncoder

            for m, path in encoders.items():
                self.learned[m] = _learned(LearnedEncoder, m, path, sample_rate)
                self.embeddings[m] = EmbeddingRows(m, path)

    def encode(self, docs: list[Document], quarantine: Callable[[str, str], None]
               ) -> tuple[list[int], list[list[int]]]:
        """Which of ``docs`` are kept (their positions) and their ids (lists, as ``encode_batch`` gives)."""
        layouts = [parts_of(d.text, media_of(d)) if media_of(d) else None for d in docs]
        texts = [p for d, parts in zip(docs, layouts, strict=True)
                 for p in (parts if parts is not None else [d.text]) if isinstance(p, str)]
        encoded = iter(self.tok.encode_batch(texts))
        kept, out = [], []
        for i, parts in enumerate(layouts):
            if parts is None:
                kept.append(i)
                out.append(next(encoded))
                continue
            ids: list[int] = []
            n_item = 0
            for part in parts:
                if isinstance(part, str):
                    ids.extend(next(encoded))
                    continue
                n_item += 1
                try:
                    src = open_item(part)  # checked once: a local path, or bytes read once
                    segments = media_segments(src, part.get("kind", ""), self.books, self.layout, item_name(part),
                                              self.features)
                except (CorruptInput, ValueError) as exc:
                    reason = exc.reason if isinstance(exc, CorruptInput) else str(exc).removeprefix(
                        f"{item_name(part)}: ")  # "no video codebook to encode it with"
                    self.failed += 1
                    self.failures[reason_kind(reason)] += 1
                    quarantine(item_name(part), reason)
                    continue
                for seg in segments:
                    self.media_tokens += len(seg)
                    ids.extend(seg.tolist())
                learned = self.learned.get(part.get("kind", ""))
                if learned is not None:
                    if not isinstance(src, str):
                        src.seek(0)
                    self.embeddings[learned.modality].add(learned.embed(src), docs[i].id, n_item - 1, part)
            if ids:
                kept.append(i)
                out.append(ids)
        return kept, out

    def result(self, packers: Iterable[Any], output: Path, task: int) -> dict[str, Any]:
        """The shards task's ``media`` record: media tokens, items left out (by reason), the
        packers' span counters, and the embeddings written."""
        packers = list(packers)
        return {"tokens": self.media_tokens, "failed_items": self.failed,
                "failures": dict(sorted(self.failures.items())),
                **{k: sum(getattr(p, k) for p in packers) for k in SPAN_COUNTERS},
                "embeddings": self.write_embeddings(output, task)}

    def write_embeddings(self, output: Path, task: int) -> dict[str, Any]:
        """This task's learned embeddings beside the shards, per modality (see ``encoders.py``)."""
        return {m: {"model": rows.model, **rows.write(output, task)} for m, rows in self.embeddings.items()
                if rows.vectors}


_LEARNED: dict[tuple[str, str], Any] = {}


def _learned(cls: Any, modality: str, path: str, sample_rate: int) -> Any:
    """One loaded model per process and folder (shard tasks of a worker share it)."""
    key = (modality, path)
    if key not in _LEARNED:
        _LEARNED[key] = cls(modality, path, sample_rate)
    return _LEARNED[key]
