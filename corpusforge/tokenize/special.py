"""Special tokens: the RT-DLM layout the project's own tokenizers use, and the ids of any run.

Tokenizers the project trains start with 16 fixed special tokens at ids 0-15. A run that loads a
foreign tokenizer uses that tokenizer's own BOS/EOS/PAD instead; ``SpecialIds`` is what a run
actually uses, recorded in ``shard_index.json`` (``special_ids``) so readers never assume a layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPECIAL_TOKENS: tuple[str, ...] = (
    "<PAD>", "<UNK>", "<BOS>", "<EOS>",
    "<IMG>", "<IMG_END>", "<AUDIO>", "<AUDIO_END>",
    "<VIDEO>", "<VIDEO_END>", "<FUSE>", "<SEP>",
    "<MASK>", "<CODE>", "<CODE_END>", "<THINK>",
)  # fmt: skip
PAD, UNK, BOS, EOS = 0, 1, 2, 3
NUM_SPECIAL = len(SPECIAL_TOKENS)
IGNORE_INDEX = -100  # label value that HuggingFace losses skip
ROLES = ("bos", "eos", "pad", "unk")
# sharding.mask_special default: the labels a model should not learn to predict. EOS is labelled
# so that a model learns to end a document; padding is always masked.
DEFAULT_MASKED = ("bos", "pad")
# The padding token appended to a tokenizer that has none (HF's usual add_special_tokens pad).
APPENDED_PAD = "<|pad|>"


@dataclass(frozen=True)
class SpecialIds:
    """A run's special token ids: BOS/EOS frame each document (no BOS when the tokenizer has none,
    or when it equals EOS, as GPT-2's does), PAD fills rows, ``masked`` get label -100."""

    pad: int
    eos: int
    bos: int | None = None
    unk: int | None = None
    tokens: Mapping[str, int] = field(default_factory=dict)  # every special token string -> id
    masked: tuple[int, ...] = ()
    appended: Mapping[str, int] = field(default_factory=dict)  # tokens this run added to the vocabulary

    @property
    def framing(self) -> int:
        """Tokens the packer adds around each document: BOS and EOS, or EOS alone."""
        return 1 if self.bos is None else 2

    def to_dict(self) -> dict[str, Any]:
        return {"bos": self.bos, "eos": self.eos, "pad": self.pad, "unk": self.unk, "masked": list(self.masked),
                "tokens": dict(sorted(self.tokens.items(), key=lambda kv: (kv[1], kv[0]))), "appended": dict(self.appended)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpecialIds:
        return cls(pad=int(d["pad"]), eos=int(d["eos"]), bos=d.get("bos"), unk=d.get("unk"),
                   tokens=dict(d.get("tokens", {})), masked=tuple(int(i) for i in d.get("masked", ())),
                   appended=dict(d.get("appended", {})))

    def masked_array(self) -> np.ndarray:
        return np.asarray(sorted({*self.masked, self.pad}), dtype=np.int32)

    def with_masked(self, names: Iterable[str]) -> SpecialIds:
        """This layout with ``names`` (roles ``bos eos pad unk`` or special token strings) masked."""
        return SpecialIds(self.pad, self.eos, self.bos, self.unk, self.tokens,
                          mask_ids(self, names), self.appended)


def mask_ids(special: SpecialIds, names: Iterable[str]) -> tuple[int, ...]:
    """The ids ``names`` stand for, padding always included; ValueError naming an unknown one."""
    ids = {special.pad}
    for name in names:
        if name in ROLES:
            i = getattr(special, name)
            if i is not None:
                ids.add(i)
        elif name in special.tokens:
            ids.add(special.tokens[name])
        else:
            known = ", ".join([*ROLES, *special.tokens])
            raise ValueError(f"sharding.mask_special: {name!r} is neither a role nor a special token of the "
                             f"tokenizer; allowed: {known}")
    return tuple(sorted(ids))


def rtdlm_ids(masked: Iterable[str] = DEFAULT_MASKED, extra: Iterable[str] = ()) -> SpecialIds:
    """The layout of tokenizers the project trains: the 16 tokens at 0-15, ``extra`` after them."""
    tokens = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *extra])}
    base = SpecialIds(PAD, EOS, BOS, UNK, tokens)
    return base.with_masked(masked)


RTDLM = rtdlm_ids()
# Outputs written before shard_index.json recorded special_ids masked every id below 16.
LEGACY = SpecialIds(PAD, EOS, BOS, UNK, {t: i for i, t in enumerate(SPECIAL_TOKENS)}, tuple(range(NUM_SPECIAL)))


def special_of_index(index: Mapping[str, Any]) -> SpecialIds:
    """The special ids an output's ``shard_index.json`` records (older outputs: the RT-DLM layout)."""
    d = index.get("special_ids")
    return SpecialIds.from_dict(d) if d else LEGACY
