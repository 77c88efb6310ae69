"""Back-translation: translate a document to a pivot language and back with two local seq2seq models."""

from __future__ import annotations

import random
from typing import Any

import xxhash

from corpusforge.models.augment import Augmenter
from corpusforge.models.perplexity import _device
from corpusforge.registry import register


class Seq2Seq:
    """A local transformers seq2seq model (Marian, T5, BART, ...) that translates lists of lines."""

    def __init__(self, path: str, max_length: int, num_beams: int, device: str | None):
        try:
            import torch
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
        except ImportError as e:
            raise ImportError("back_translation needs transformers and torch: pip install 'corpusforge[ml]'") from e
        self.torch, self.device = torch, device or _device()
        try:
            self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)
            self.model: Any = model.to(self.device).eval()
        except (OSError, ValueError) as e:
            raise ValueError(f"back_translation: cannot load a seq2seq model from {path}: {e}") from e
        self.max_length, self.num_beams = max_length, num_beams

    def __call__(self, lines: list[str], sample_seed: int | None) -> list[str]:
        """Translations of ``lines`` (one generate call); sampled with top-p 0.9 when a seed is given."""
        torch = self.torch
        enc = self.tok(lines, truncation=True, max_length=self.max_length, padding=True,
                       return_tensors="pt").to(self.device)
        kw: dict[str, Any] = {"max_new_tokens": self.max_length, "num_beams": self.num_beams}
        if sample_seed is not None:
            torch.manual_seed(sample_seed)
            kw.update(do_sample=True, top_p=0.9, num_beams=1)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kw)
        return [t.strip() for t in self.tok.batch_decode(out, skip_special_tokens=True)]


@register("back_translation")
class BackTranslation(Augmenter):
    """Paraphrase by round trip: ``model_path`` translates into a pivot language, ``reverse_model_path`` back.

    Both are local seq2seq folders (e.g. Helsinki-NLP ``opus-mt-en-de`` and ``opus-mt-de-en`` saved
    with ``save_pretrained``). Each non-empty line is translated on its own (blank lines kept), up to
    ``max_length`` tokens. Greedy or beam decoding by default; ``sample: true`` draws top-p samples
    seeded per document and copy, which ``factor > 1`` needs (otherwise the copies would be equal).
    One document's lines go in one batch, so a copy does not depend on its neighbours.
    """

    def __init__(self, model_path: str, reverse_model_path: str, max_length: int = 256, num_beams: int = 1,
                 sample: bool = False, device: str | None = None, factor: int = 1, seed: int = 0,
                 fraction: float = 1.0, keep_original: bool = True):
        if factor > 1 and not sample:
            raise ValueError("factor > 1 needs sample: true (deterministic decoding gives the same copy each time)")
        if max_length < 1 or num_beams < 1:
            raise ValueError("max_length and num_beams must be >= 1")
        super().__init__(factor, seed, fraction, keep_original, batch_size=8)
        self.model_path, self.reverse_model_path = model_path, reverse_model_path
        self.max_length, self.num_beams, self.sample, self.device = max_length, num_beams, sample, device
        self._models: tuple[Seq2Seq, Seq2Seq] | None = None

    def setup(self, ctx: object) -> None:
        if self._models is None:
            self._models = (Seq2Seq(self.model_path, self.max_length, self.num_beams, self.device),
                            Seq2Seq(self.reverse_model_path, self.max_length, self.num_beams, self.device))

    def augment(self, text: str, rng: random.Random) -> str | None:
        self.setup(None)
        assert self._models is not None
        lines = text.split("\n")
        todo = [i for i, ln in enumerate(lines) if ln.strip()]
        if not todo:
            return None
        seed = rng.getrandbits(63) if self.sample else None
        forward, reverse = self._models
        pivot = forward([lines[i] for i in todo], seed)
        back = reverse(pivot, None if seed is None else xxhash.xxh3_64_intdigest(str(seed).encode()) >> 1)
        out = list(lines)
        for i, t in zip(todo, back, strict=True):
            out[i] = t
        result = "\n".join(out)
        return result if result.strip() else None
