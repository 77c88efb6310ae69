"""Back-off n-gram language models in the ARPA text format (the format KenLM's ``lmplz`` writes)."""

from __future__ import annotations

from pathlib import Path


class ArpaModel:
    """An ARPA n-gram model held in dicts; scores with Katz back-off in log10, as KenLM does."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.prob: dict[tuple[str, ...], float] = {}
        self.backoff: dict[tuple[str, ...], float] = {}
        order = 0
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"perplexity: cannot read ARPA model {self.path}: {e}") from e
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:].split("-")[0])
                continue
            if order == 0:
                continue
            parts = line.split()
            if len(parts) not in (order + 1, order + 2):
                raise ValueError(f"{self.path}:{lineno}: expected log10 prob, {order} words, optional back-off")
            try:
                key = tuple(parts[1 : order + 1])
                self.prob[key] = float(parts[0])
                if len(parts) == order + 2:
                    self.backoff[key] = float(parts[-1])
            except ValueError as e:
                raise ValueError(f"{self.path}:{lineno}: not a number: {e}") from e
        if not self.prob:
            raise ValueError(f"{self.path}: no n-grams (not an ARPA file?)")
        self.order = max(len(k) for k in self.prob)
        self.unk = self.prob.get(("<unk>",), -100.0)

    def word_log10(self, context: tuple[str, ...], word: str) -> float:
        """log10 P(word | context) with back-off to shorter contexts."""
        context = context[-(self.order - 1) :] if self.order > 1 else ()
        penalty = 0.0
        while True:
            p = self.prob.get((*context, word))
            if p is not None:
                return p + penalty
            if not context:
                return self.unk + penalty
            penalty += self.backoff.get(context, 0.0)
            context = context[1:]

    def sentence_log10(self, words: list[str]) -> float:
        """log10 probability of one sentence between ``<s>`` and ``</s>``."""
        history: tuple[str, ...] = ("<s>",)
        total = 0.0
        for w in [*words, "</s>"]:
            total += self.word_log10(history, w)
            history = (*history, w)
        return total

    def perplexity(self, text: str) -> float:
        """CCNet's document perplexity: each non-empty line a sentence, 10^(-sum log10 / tokens incl. </s>)."""
        total, n = 0.0, 0
        for line in text.splitlines():
            words = line.split()
            if words:
                total += self.sentence_log10(words)
                n += len(words) + 1
        return 10.0 ** (-total / n) if n else float("inf")
