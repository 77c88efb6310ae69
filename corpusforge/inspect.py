"""Decode shard samples back to text, so a person can see what training will see."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from safetensors import safe_open
from safetensors.numpy import load
from tokenizers import Tokenizer

from corpusforge.errors import CorpusforgeError
from corpusforge.media.sequence import render_ids
from corpusforge.remote import is_url
from corpusforge.shards.index import INDEX_NAME
from corpusforge.tokenize.special import PAD


def _reader(output: str | os.PathLike[str]) -> Callable[[str], bytes]:
    """Bytes of a file of ``output`` by relative path, for a folder or an fsspec URL."""
    if is_url(output):
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(str(output).rstrip("/"))
        return lambda rel: fs.cat_file(f"{root}/{rel}")
    return lambda rel: (Path(output) / rel).read_bytes()


def decoded_samples(output: str | os.PathLike[str], split: str = "train", n: int = 2
                    ) -> Iterator[tuple[str, int, str]]:
    """``(shard path, row, text)`` for the first ``n`` samples of ``split``, padding removed.

    ``output`` may be an fsspec URL (``s3://...``): then only the index, the tokenizer and the
    shards that hold those samples are read from the store.
    """
    read = _reader(output)
    try:
        index = orjson.loads(read(INDEX_NAME))
    except FileNotFoundError:
        raise CorpusforgeError(f"{str(output).rstrip('/')}/{INDEX_NAME}: missing (is this a corpusforge output "
                               "folder?)") from None
    tok = Tokenizer.from_str(read(index["tokenizer"]["path"]).decode())
    shards = [s for s in index["shards"] if s["split"] == split]
    layout = index.get("media")  # multimodal: media spans shown as <IMG ×196>
    if not shards:
        splits = sorted({s["split"] for s in index["shards"]})
        raise CorpusforgeError(f"no shards in split {split!r}; splits present: {', '.join(splits)}")
    left = n
    for s in shards:
        if is_url(output):
            ids = load(read(s["path"]))["input_ids"]
        else:
            with safe_open(str(Path(output) / s["path"]), framework="numpy") as f:
                ids = f.get_tensor("input_ids")
        for row in range(min(left, len(ids))):
            seq = [int(i) for i in ids[row] if i != PAD]
            if layout is None:
                yield s["path"], row, tok.decode(seq, skip_special_tokens=False)
            else:
                yield s["path"], row, render_ids(seq, layout, lambda t: tok.decode(t, skip_special_tokens=False))
        left -= min(left, len(ids))
        if left <= 0:
            return
