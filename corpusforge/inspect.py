"""Decode shard samples back to text, so a person can see what training will see."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from corpusforge.errors import CorpusforgeError
from corpusforge.loader.reader import read_stored
from corpusforge.media.sequence import render_ids
from corpusforge.shards.index import INDEX_NAME
from corpusforge.tokenize.special import PAD


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


def decoded_samples(output: Path, split: str = "train", n: int = 2) -> Iterator[tuple[str, int, str]]:
    """``(shard path, row, text)`` for the first ``n`` samples of ``split``, padding removed.

    Reads every shard format and compression (``corpusforge.loader.reader.read_stored``)."""
    index_path = output / INDEX_NAME
    if not index_path.exists():
        raise CorpusforgeError(f"{index_path}: missing (is this a corpusforge output folder?)")
    index = orjson.loads(index_path.read_bytes())
    decode = text_decoder(output / index["tokenizer"]["path"])
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
            yield s["path"], row, decode(seq) if layout is None else render_ids(seq, layout, decode)
        left -= min(left, len(ids))
        if left <= 0:
            return
