"""The 16 special tokens every corpusforge vocabulary starts with, at fixed ids 0-15."""

from __future__ import annotations

SPECIAL_TOKENS: tuple[str, ...] = (
    "<PAD>", "<UNK>", "<BOS>", "<EOS>",
    "<IMG>", "<IMG_END>", "<AUDIO>", "<AUDIO_END>",
    "<VIDEO>", "<VIDEO_END>", "<FUSE>", "<SEP>",
    "<MASK>", "<CODE>", "<CODE_END>", "<THINK>",
)  # fmt: skip
PAD, UNK, BOS, EOS = 0, 1, 2, 3
NUM_SPECIAL = len(SPECIAL_TOKENS)
IGNORE_INDEX = -100  # label value that HuggingFace losses skip
