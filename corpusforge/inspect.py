"""Decode shard samples back to text, so a person can see what training will see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
from tokenizers import Tokenizer

from corpusforge.errors import CorpusforgeError
from corpusforge.loader.reader import read_stored
from corpusforge.media.sequence import render_ids
from corpusforge.shards.index import INDEX_NAME
from corpusforge.tokenize.special import PAD


def decoded_samples(output: Path, split: str = "train", n: int = 2) -> Iterator[tuple[str, int, str]]:
    """``(shard path, row, text)`` for the first ``n`` samples of ``split``, padding removed.

    Reads every shard format and compression (``corpusforge.loader.reader.read_stored``)."""
    index_path = output / INDEX_NAME
    if not index_path.exists():
        raise CorpusforgeError(f"{index_path}: missing (is this a corpusforge output folder?)")
    index = orjson.loads(index_path.read_bytes())
    tok = Tokenizer.from_file(str(output / index["tokenizer"]["path"]))
    shards = [s for s in index["shards"] if s["split"] == split]
    layout = index.get("media")  # multimodal: media spans shown as <IMG ×196>
    if not shards:
        splits = sorted({s["split"] for s in index["shards"]})
        raise CorpusforgeError(f"no shards in split {split!r}; splits present: {', '.join(splits)}")
    left = n
    for s in shards:
        try:
            ids = read_stored(output / s["path"], index["sequence_length"])["input_ids"]
        except (OSError, ValueError) as exc:
            raise CorpusforgeError(f"{s['path']}: cannot read the shard ({exc}); corpusforge validate says more") from None
        for row in range(min(left, len(ids))):
            seq = [int(i) for i in ids[row] if i != PAD]
            if layout is None:
                yield s["path"], row, tok.decode(seq, skip_special_tokens=False)
            else:
                yield s["path"], row, render_ids(seq, layout, lambda t: tok.decode(t, skip_special_tokens=False))
        left -= min(left, len(ids))
        if left <= 0:
            return
