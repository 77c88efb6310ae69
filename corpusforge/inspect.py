"""Decode shard samples back to text, and a row's media codes back to PNG / WAV files, so a person
can see (and hear) what training will see."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson

from corpusforge.errors import CorpusforgeError
from corpusforge.layout import CODEBOOKS, OutputLayout
from corpusforge.layout import INDEX as INDEX_NAME
from corpusforge.loader.reader import read_stored
from corpusforge.media.sequence import render_ids
from corpusforge.remote import is_url
from corpusforge.tokenize.special import special_of_index


def text_decoder(path: Path) -> Callable[[list[int]], str]:
    """ids -> text with the special tokens shown (``<BOS>``), for the run's ``tokenizer.json`` (HF)
    or ``tokenizer.model`` (SentencePiece, whose decode drops its control tokens PAD/UNK/BOS/EOS)."""
    if path.suffix != ".model":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        return lambda ids: tok.decode(ids, skip_special_tokens=False)
    from corpusforge.tokenize.spm import SentencePieceEncoder

    sp = SentencePieceEncoder.from_file(path).sp

    def decode(ids: list[int]) -> str:
        out, run = [], []
        for i in ids:
            if sp.is_control(i):
                out += [sp.decode(run), sp.id_to_piece(i)]
                run = []
            else:
                run.append(i)
        return "".join([*out, sp.decode(run)])

    return decode


def _fetcher(output: str | os.PathLike[str], scratch: Path) -> Callable[[str], Path]:
    """``relative path -> local path``: the file itself for a folder; for an fsspec URL, a copy
    fetched into ``scratch`` on first use, so only the files asked for are read from the store."""
    if not is_url(output):
        return lambda rel: Path(output) / rel
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(str(output).rstrip("/"))

    def fetch(rel: str) -> Path:
        local = scratch / rel
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get_file(f"{root}/{rel}", str(local))
            except FileNotFoundError:
                raise FileNotFoundError(f"{str(output).rstrip('/')}/{rel}") from None
        return local

    return fetch


def decoded_samples(output: str | os.PathLike[str], split: str = "train", n: int = 2
                    ) -> Iterator[tuple[str, int, str]]:
    """``(shard path, row, text)`` for the first ``n`` samples of ``split``, padding removed.

    Reads every shard format and compression (``corpusforge.loader.reader.read_stored``).
    ``output`` may be an fsspec URL (``s3://...``): then only the index, the tokenizer and the
    shards that hold those samples are fetched from the store."""
    with tempfile.TemporaryDirectory(prefix="corpusforge-inspect-") as scratch:
        yield from _decoded(output, _fetcher(output, Path(scratch)), split, n)


def _decoded(output: str | os.PathLike[str], fetch: Callable[[str], Path], split: str, n: int
             ) -> Iterator[tuple[str, int, str]]:
    try:
        index_path = fetch(INDEX_NAME)
    except FileNotFoundError:
        index_path = OutputLayout(str(output).rstrip("/")).index
    if not index_path.exists():
        from corpusforge.staging import missing_shard_index

        raise CorpusforgeError(missing_shard_index(output))
    index = orjson.loads(index_path.read_bytes())
    decode = text_decoder(fetch(index["tokenizer"]["path"]))
    shards = [s for s in index["shards"] if s["split"] == split]
    pad = special_of_index(index).pad
    layout = index.get("media")  # multimodal: media spans shown as <IMG ×196>
    if not shards:
        splits = sorted({s["split"] for s in index["shards"]})
        raise CorpusforgeError(f"no shards in split {split!r}; splits present: {', '.join(splits)}")
    left = n
    for s in shards:
        try:
            for side in s.get("sidecars", []):
                fetch(side["path"])
            ids = read_stored(fetch(s["path"]), index["sequence_length"], pad)["input_ids"]
        except (OSError, ValueError) as exc:
            raise CorpusforgeError(f"{s['path']}: cannot read the shard ({exc}); corpusforge validate says more") from None
        for row in range(min(left, len(ids))):
            seq = [int(i) for i in ids[row] if i != pad]
            yield s["path"], row, decode(seq) if layout is None else render_ids(seq, layout, decode)
        left -= min(left, len(ids))
        if left <= 0:
            return


def row_media(output: str | os.PathLike[str], row: int, folder: str | os.PathLike[str], split: str = "train"
              ) -> list[tuple[Path, str, int, bool]]:
    """Write every media span of row ``row`` of ``split`` (counted over the split's shards in index
    order) into ``folder`` as ``row<row>_<k>_<modality>.png|.wav`` through the output's codebooks
    (``corpusforge.media.reconstruct``); returns ``(file, modality, codes, whole)`` per span."""
    from corpusforge.media.reconstruct import render_span, spans_of_row
    from corpusforge.media.vq import Codebook
    from corpusforge.state import atomic_write_bytes

    with tempfile.TemporaryDirectory(prefix="corpusforge-inspect-") as scratch:
        fetch = _fetcher(output, Path(scratch))
        index = _index(output, fetch)
        layout = index.get("media")
        if not layout:
            raise CorpusforgeError(f"{str(output).rstrip('/')}: not a multimodal output (its index has no media layout)")
        ids = _row(index, fetch, split, row)
        spans = spans_of_row(ids, layout)
        books: dict[str, Codebook] = {}
        out_dir = Path(folder)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for k, (modality, codes, whole) in enumerate(spans):
            if modality not in books:
                files = layout["media"][modality].get("codebook", {}).get("files", {})
                for rel in files:
                    fetch(rel)
                books[modality] = Codebook.load(fetch(layout["media"][modality].get("codebook", {}).get(
                    "path", f"{CODEBOOKS}/{modality}")))
            suffix, data = render_span(modality, codes, books[modality])
            path = out_dir / f"row{row}_{k}_{modality}{suffix}"
            atomic_write_bytes(path, data)
            written.append((path, modality, len(codes), whole))
        return written


def _index(output: str | os.PathLike[str], fetch: Callable[[str], Path]) -> dict:
    try:
        path = fetch(INDEX_NAME)
    except FileNotFoundError:
        path = OutputLayout(str(output).rstrip("/")).index
    if not path.exists():
        raise CorpusforgeError(f"{str(output).rstrip('/')}/{INDEX_NAME}: missing (is this a corpusforge output folder?)")
    return orjson.loads(path.read_bytes())


def _row(index: dict, fetch: Callable[[str], Path], split: str, row: int) -> np.ndarray:
    """Row ``row`` of ``split``'s input_ids, counted over its shards in index order."""
    shards = [s for s in index["shards"] if s["split"] == split]
    total = sum(s["samples"] for s in shards)
    if not 0 <= row < total:
        raise CorpusforgeError(f"row {row}: split {split!r} has rows 0-{total - 1}" if total else
                               f"no shards in split {split!r}")
    for s in shards:
        if row < s["samples"]:
            try:
                for side in s.get("sidecars", []):
                    fetch(side["path"])
                return np.asarray(read_stored(fetch(s["path"]), index["sequence_length"])["input_ids"][row])
            except (OSError, ValueError) as exc:
                raise CorpusforgeError(f"{s['path']}: cannot read the shard ({exc}); corpusforge validate says more") from None
        row -= s["samples"]
    raise AssertionError("unreachable: the row is inside the split")
