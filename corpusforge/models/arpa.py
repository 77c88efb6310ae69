"""Back-off n-gram language models in the ARPA text format (the format KenLM's ``lmplz`` writes).

Like KenLM's ``probing`` structure the model keeps 64-bit hashes of the n-grams' word ids, no strings;
per order a sorted array of them with float32 log10 probabilities and back-offs, so a model costs 16
bytes per n-gram plus its vocabulary, and a whole batch of documents is scored with a few NumPy searches.
``train_arpa`` writes a small interpolated Kneser-Ney model from text, for tests and quick baselines.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import mmap
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import repeat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_K1 = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


_BLOCK = 16 << 20
_SECTION = re.compile(rb"^\\(?:(\d+)-grams:|end\\|data\\)[ \t\r]*$", re.M)


def _parse_arrow(data: bytes | mmap.mmap, start: int, end: int, k: int, words: list[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Column-wise parse of ``prob<TAB>w1 ... wk[<TAB>backoff]`` lines, ``_BLOCK`` bytes at a time
    (bounded memory); None if any line is not so. 1-grams append their words to ``words``."""
    if data.find(b"\r", start, end) != -1:
        return None
    view = memoryview(data)
    value_set = pa.array(words, pa.string()) if k > 1 else None
    new_words: list[str] = []
    keys, probs, backoffs = [], [], []
    try:
        while start < end:
            stop = end if end - start <= _BLOCK else data.find(b"\n", start + _BLOCK, end) + 1 or end
            block = _parse_block(view[start:stop], k, len(words) + len(new_words), value_set, new_words)
            if block is None:
                return None
            keys.append(block[0])
            probs.append(block[1])
            backoffs.append(block[2])
            start = stop
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    finally:
        view.release()
    words += new_words
    return np.concatenate(keys), np.concatenate(probs), np.concatenate(backoffs)


def _parse_block(chunk: memoryview, k: int, first_id: int, value_set: pa.Array | None, new_words: list[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    lines = pacsv.read_csv(
        pa.py_buffer(chunk),
        read_options=pacsv.ReadOptions(column_names=["line"], block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter="\x01", quote_char=False, escape_char=False,
                                          double_quote=False, newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}),
    ).column("line").combine_chunks()
    parts = pc.split_pattern(lines, "\t")
    nparts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    if not np.isin(nparts, (2, 3)).all():
        return None
    prob = pc.cast(pc.list_element(parts, 0), pa.float32()).to_numpy(zero_copy_only=False)
    backoff = np.zeros(len(lines), dtype=np.float32)
    has = nparts == 3
    if has.any():
        tail = pc.list_flatten(pc.list_slice(parts, 2, 3))
        backoff[has] = pc.cast(tail, pa.float32()).to_numpy(zero_copy_only=False)
    grams = pc.split_pattern(pc.list_element(parts, 1), " ")
    if not (pc.list_value_length(grams).to_numpy(zero_copy_only=False) == k).all():
        return None
    flat = pc.list_flatten(grams)
    if value_set is None:
        ids = np.arange(first_id, first_id + len(flat), dtype=np.uint64)
        new_words += flat.to_pylist()
    else:
        found = pc.index_in(flat, value_set=value_set)
        if found.null_count:
            return None
        ids = found.to_numpy(zero_copy_only=False).astype(np.uint64)
    return ngram_hashes(ids.reshape(-1, k)), prob, backoff


def _mix(h: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """One step of the n-gram hash: fold a word id into ``h`` (splitmix64 finaliser; wraps mod 2^64)."""
    z = h * _K1 + ids + np.uint64(1)
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def ngram_hashes(ids: np.ndarray) -> np.ndarray:
    """Hash of each row of an (n, k) array of word ids, folded last word first."""
    h = np.zeros(len(ids), dtype=np.uint64)
    for j in range(ids.shape[1] - 1, -1, -1):
        h = _mix(h, ids[:, j])
    return h


def _open_bytes(path: Path) -> bytes | mmap.mmap:
    """The file's bytes: memory-mapped, or decompressed whole for ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            if f.seek(0, 2) == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, EOFError) as e:
        raise ValueError(f"perplexity: cannot read ARPA model {path}: {e}") from e


class _Table:
    """The n-grams of one order: sorted hashes, log10 probabilities, back-offs (0 where none)."""

    def __init__(self, keys: np.ndarray, prob: np.ndarray, backoff: np.ndarray):
        order = np.argsort(keys, kind="stable")
        self.keys, self.prob, self.backoff = keys[order], prob[order], backoff[order]

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, index) of each hash; searched in sorted order, which keeps the table's
        cache lines warm (about 4x faster than in text order on a 1M-entry table)."""
        order = np.argsort(keys)
        idx = np.empty(len(keys), dtype=np.intp)
        idx[order] = np.searchsorted(self.keys, keys[order])
        idx[idx == len(self.keys)] = 0
        return self.keys[idx] == keys, idx


class ArpaModel:
    """An ARPA back-off model scored as KenLM does: log10 Katz back-off, unknown words as ``<unk>``.

    Sections in KenLM/SRILM layout (``prob<TAB>w1 w2<TAB>backoff``) are parsed column-wise with
    Arrow; any other spacing goes through a line-by-line reader, which also names a bad line.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = _open_bytes(self.path)
        try:
            self._load(data)
        finally:
            if isinstance(data, mmap.mmap):
                with contextlib.suppress(BufferError):  # a buffer still held unmaps when collected
                    data.close()
            pa.default_memory_pool().release_unused()  # the parse's buffers, kept by Arrow's allocator

    def _load(self, data: bytes | mmap.mmap) -> None:
        heads = list(_SECTION.finditer(data))
        sections: dict[int, tuple[int, int]] = {}
        for m, nxt in zip(heads, [*heads[1:], None], strict=True):
            if m.group(1) is not None:
                sections[int(m.group(1))] = (m.end(), nxt.start() if nxt else len(data))
        if 1 not in sections:
            raise ValueError(f"{self.path}: no 1-grams (not an ARPA file?)")
        self.order = max(sections)
        self.words: list[str] = []
        self.tables: list[_Table] = []
        for k in range(1, self.order + 1):
            start, end = sections.get(k, (0, 0))
            parsed = _parse_arrow(data, start, end, k, self.words) if end > start else None
            if parsed is None:
                first_line = data[:start].count(b"\n") + 1
                parsed = self._parse_lines(data[start:end], k, first_line)
            self.tables.append(_Table(*parsed))
        self.vocab = {w: i for i, w in enumerate(self.words)}
        if len(self.vocab) != len(self.words):
            raise ValueError(f"{self.path}: a word is listed twice in the 1-grams")
        unk = self.vocab.get("<unk>")
        if unk is None:  # KenLM substitutes -100 for a missing <unk>
            unk = self.vocab["<unk>"] = len(self.words)
            self.words.append("<unk>")
            t = self.tables[0]
            self.tables[0] = _Table(np.append(t.keys, ngram_hashes(np.array([[unk]], dtype=np.uint64))),
                                    np.append(t.prob, np.float32(-100.0)), np.append(t.backoff, np.float32(0.0)))
        self.unk_id = unk
        self.bos = self.vocab.get("<s>", unk)
        self.eos = self.vocab.get("</s>", unk)

    def _parse_lines(self, chunk: bytes, k: int, first_line: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The n-grams of order ``k`` read line by line, any white space between fields."""
        try:
            lines = chunk.decode("utf-8").split("\n")
        except UnicodeDecodeError as e:
            raise ValueError(f"{self.path}: the {k}-grams are not UTF-8: {e}") from e
        ids: list[int] = []
        prob: list[float] = []
        backoff: list[float] = []
        vocab = {w: i for i, w in enumerate(self.words)} if k > 1 else {}
        for lineno, line in enumerate(lines, first_line):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != k + 1 and len(parts) != k + 2:
                raise ValueError(f"{self.path}:{lineno}: expected log10 prob, {k} words, optional back-off")
            try:
                prob.append(float(parts[0]))
                backoff.append(float(parts[-1]) if len(parts) == k + 2 else 0.0)
            except ValueError as e:
                raise ValueError(f"{self.path}:{lineno}: not a number: {e}") from e
            if k == 1:
                ids.append(len(self.words))
                self.words.append(parts[1])
                continue
            for w in parts[1 : k + 1]:
                i = vocab.get(w)
                if i is None:
                    raise ValueError(f"{self.path}:{lineno}: word {w!r} is not among the 1-grams")
                ids.append(i)
        grams = np.array(ids, dtype=np.uint64).reshape(-1, k)
        return ngram_hashes(grams), np.array(prob, dtype=np.float32), np.array(backoff, dtype=np.float32)

    def __len__(self) -> int:
        """Number of n-grams of all orders."""
        return sum(len(t.keys) for t in self.tables)

    def _token_log10(self, ids: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """log10 P of each token given the up to order-1 tokens before it in its sentence.

        ``pos`` is each token's position in its sentence (``<s>`` is 0); KenLM's rule: the longest
        run of matching orders from the unigram up decides, plus the back-offs of the longer contexts.
        """
        n, big = len(ids), self.order
        h = np.zeros(n, dtype=np.uint64)
        found = np.zeros((big, n), dtype=bool)
        prob = np.zeros((big, n), dtype=np.float32)
        bo = np.zeros((big, n), dtype=np.float32)
        for k in range(1, big + 1):
            shifted = np.empty(n, dtype=np.uint64)
            shifted[k - 1 :] = ids[: n - k + 1]
            shifted[: k - 1] = 0
            h = _mix(h, shifted)
            f, idx = self.tables[k - 1].find(h)
            f &= pos >= k - 1
            if k > 1:
                f &= found[k - 2]  # a run from the unigram up, as KenLM extends
            found[k - 1] = f
            prob[k - 1][f] = self.tables[k - 1].prob[idx[f]]
            bo[k - 1][f] = self.tables[k - 1].backoff[idx[f]]
        longest = found.sum(axis=0)  # >= 1: every id has a unigram (unknowns are <unk>)
        logp = prob[np.maximum(longest, 1) - 1, np.arange(n)].astype(np.float64)
        if big > 1:
            # back-offs of the contexts of length longest..order-1: the j-grams ending at the token before
            ctx = np.zeros((big - 1, n), dtype=np.float64)
            ctx[:, 1:] = bo[: big - 1, :-1]
            use = np.arange(1, big)[:, None] >= longest[None, :]
            logp += (ctx * use).sum(axis=0)
        return logp

    def encode(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Word ids of ``<s> line </s>`` for each non-empty line, positions in the sentence, text index."""
        words: list[str] = []
        lengths: list[int] = []
        owners: list[int] = []
        for t, text in enumerate(texts):
            for line in text.splitlines():
                w = line.split()
                if w:
                    words += w
                    lengths.append(len(w))
                    owners.append(t)
        size = np.array(lengths, dtype=np.int64) + 2
        starts = np.cumsum(size) - size
        ids = np.empty(int(size.sum()), dtype=np.uint64)
        inner = np.ones(len(ids), dtype=bool)
        inner[starts] = inner[starts + size - 1] = False
        ids[starts], ids[starts + size - 1] = self.bos, self.eos
        ids[inner] = np.fromiter(map(self.vocab.get, words, repeat(self.unk_id)), dtype=np.uint64, count=len(words))
        pos = np.arange(len(ids)) - np.repeat(starts, size)
        return ids, pos, np.repeat(np.array(owners, dtype=np.int64), size)

    def log10_totals(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per text: summed log10 probability of its lines as sentences, and tokens scored (incl. ``</s>``)."""
        ids, pos, owner = self.encode(texts)
        if not len(ids):
            return np.zeros(len(texts)), np.zeros(len(texts), dtype=np.int64)
        scored = pos > 0
        logp = self._token_log10(ids, pos)[scored]
        return (np.bincount(owner[scored], weights=logp, minlength=len(texts)),
                np.bincount(owner[scored], minlength=len(texts)))

    def conditional_log10(self, context: list[str], words: list[str]) -> np.ndarray:
        """log10 P(w | ``<s>`` context) for each w of ``words`` (to inspect or check a model)."""
        vocab, unk = self.vocab, self.unk_id
        sent = [self.bos, *(vocab.get(w, unk) for w in context)]
        ids = np.array([[*sent, vocab.get(w, unk)] for w in words], dtype=np.uint64).reshape(-1)
        pos = np.tile(np.arange(len(sent) + 1), len(words))
        return self._token_log10(ids, pos)[len(sent) :: len(sent) + 1]

    def sentence_log10(self, words: list[str]) -> float:
        """log10 probability of one sentence between ``<s>`` and ``</s>`` (KenLM's ``Model.score``)."""
        return float(self.log10_totals([" ".join(words)])[0][0])

    def perplexities(self, texts: list[str]) -> list[float]:
        """CCNet's document perplexity of each text: each non-empty line a sentence,
        10^(-sum log10 / tokens incl. </s>); ``inf`` for a text without words."""
        total, count = self.log10_totals(texts)
        return [10.0 ** (-s / c) if c else math.inf for s, c in zip(total.tolist(), count.tolist(), strict=True)]

    def perplexity(self, text: str) -> float:
        """CCNet's document perplexity of one text."""
        return self.perplexities([text])[0]


SPECIAL_WORDS = frozenset({"<unk>", "<s>", "</s>"})
_WIKITEXT_MARK = re.compile(r" @([-.,])@ ")
_WORD = re.compile(r"\w+|[^\w\s]")
_DIGIT = re.compile(r"\d")


def normalize_words(text: str) -> str:
    """CCNet-like word normalization, line by line: lower case, accents stripped, digits as 0, each
    punctuation mark a word of its own; WikiText's `` @-@ `` markers become their symbol first."""
    out = []
    for line in text.splitlines():
        line = unicodedata.normalize("NFD", _WIKITEXT_MARK.sub(r"\1", line))
        line = _DIGIT.sub("0", "".join(c for c in line if not unicodedata.combining(c)).lower())
        out.append(" ".join(_WORD.findall(line)))
    return "\n".join(out)


def train_arpa(lines: Iterable[str], path: str | Path, order: int = 3, discount: float = 0.75,
               normalize: bool = False) -> Path:
    """Write an interpolated Kneser-Ney model of whitespace-split ``lines`` as ARPA (one discount
    for all orders; lower orders on continuation counts, n-grams starting ``<s>`` on raw counts).

    ``<unk>``, ``<s>`` and ``</s>`` in the text are white space, as KenLM's ``lmplz --skip_symbols``
    reads them: WikiText's 15k literal ``<unk>`` would otherwise make an unknown word as likely as a
    common one. ``<unk>`` gets only the interpolation's leftover mass. ``normalize`` applies
    ``normalize_words`` first (score with the ``perplexity`` step's ``normalize: true`` then).
    """
    if order < 1 or not 0 < discount < 1:
        raise ValueError("train_arpa: order must be >= 1 and 0 < discount < 1")
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for line in lines:
        words = [w for w in line.split() if w not in SPECIAL_WORDS]
        if normalize:
            words = normalize_words(" ".join(words)).split()
        if not words:
            continue
        sent = ["<s>", *words, "</s>"]
        for k in range(1, order + 1):
            c = counts[k - 1]
            for i in range(0 if k > 1 else 1, len(sent) - k + 1):
                c[tuple(sent[i : i + k])] += 1
    if not counts[0]:
        raise ValueError("train_arpa: no words in the training text")
    counts[0][("<s>",)] = 0
    # Kneser-Ney: an n-gram of a lower order counts its distinct left extensions
    adjusted: list[dict[tuple[str, ...], int]] = [dict(c) for c in counts]
    for k in range(order - 1, 0, -1):
        cont: Counter[tuple[str, ...]] = Counter(g[1:] for g in counts[k])
        adjusted[k - 1] = {g: (c if g[0] == "<s>" else cont.get(g, 0)) for g, c in counts[k - 1].items()}
    vocab = sorted({g[0] for g in counts[0]} | {"<unk>", "</s>"})
    logp: list[dict[tuple[str, ...], float]] = [{} for _ in range(order)]
    backoff: list[dict[tuple[str, ...], float]] = [{} for _ in range(order)]
    uni = adjusted[0]
    total = sum(uni.values())
    types = sum(1 for w, c in uni.items() if c > 0)
    spread = discount * types / total / (len(vocab) - 1)  # <s> is never predicted
    for w in vocab:
        if w == "<s>":
            logp[0][(w,)] = -99.0
        else:
            logp[0][(w,)] = math.log10(max(uni.get((w,), 0) - discount, 0) / total + spread)
    for k in range(2, order + 1):
        denom: dict[tuple[str, ...], float] = defaultdict(float)
        kinds: Counter[tuple[str, ...]] = Counter()
        for g, c in adjusted[k - 1].items():
            if c > 0:
                denom[g[:-1]] += c
                kinds[g[:-1]] += 1
        gamma = {h: discount * kinds[h] / d for h, d in denom.items()}
        for h, g in gamma.items():
            backoff[k - 2][h] = math.log10(g)
        for g, c in adjusted[k - 1].items():
            if c <= 0:
                continue
            h = g[:-1]
            lower = 10.0 ** _backoff_log10(logp, backoff, g[1:])
            logp[k - 1][g] = math.log10((c - discount) / denom[h] + gamma[h] * lower)
    out = Path(path)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for k in range(order):
            f.write(f"ngram {k + 1}={len(logp[k])}\n")
        for k in range(order):
            f.write(f"\n\\{k + 1}-grams:\n")
            for g, p in sorted(logp[k].items()):
                b = backoff[k].get(g)
                f.write(f"{p:.6f}\t{' '.join(g)}" + (f"\t{b:.6f}\n" if b is not None and k < order - 1 else "\n"))
        f.write("\n\\end\\\n")
    return out


def _backoff_log10(logp: list[dict], backoff: list[dict], g: tuple[str, ...]) -> float:
    """log10 P(g[-1] | g[:-1]) in the lower-order model written so far (Katz back-off)."""
    penalty = 0.0
    while True:
        p = logp[len(g) - 1].get(g)
        if p is not None:
            return p + penalty
        penalty += backoff[len(g) - 2].get(g[:-1], 0.0)
        g = g[1:]


KENLM_MAGIC = b"mmap lm http://kheafield.com/code"
NGRAM_SUFFIXES = (".arpa", ".arpa.gz", ".bin", ".binary", ".klm", ".mmap")
BACKENDS = ("auto", "kenlm", "python")


def is_kenlm_binary(path: str | Path) -> bool:
    """Whether ``path`` starts with the header KenLM's ``build_binary`` writes."""
    try:
        with open(path, "rb") as f:
            return f.read(len(KENLM_MAGIC)) == KENLM_MAGIC
    except OSError as e:
        raise ValueError(f"perplexity: cannot read n-gram model {path}: {e}") from e


class KenLMModel:
    """An ARPA or binary KenLM model through the ``kenlm`` module, with ``ArpaModel``'s perplexity."""

    def __init__(self, path: str | Path):
        try:
            import kenlm
        except ImportError as e:
            raise ImportError("perplexity: KenLM models need the kenlm module: pip install 'corpusforge[kenlm]'") from e
        self.path = Path(path)
        config = kenlm.Config()
        config.show_progress = False
        try:
            self.model = kenlm.Model(str(self.path), config)
        except (OSError, RuntimeError) as e:
            raise ValueError(f"perplexity: kenlm cannot load {self.path}: {e}") from e
        self.order = self.model.order

    def perplexities(self, texts: list[str]) -> list[float]:
        """CCNet's document perplexity of each text (as ``ArpaModel.perplexities``)."""
        score = self.model.score
        out: list[float] = []
        for text in texts:
            total, n = 0.0, 0
            for line in text.splitlines():
                words = line.split()
                if words:
                    total += score(" ".join(words), bos=True, eos=True)
                    n += len(words) + 1
            out.append(10.0 ** (-total / n) if n else math.inf)
        return out


def arpa_order(path: str | Path) -> int:
    """The highest order an ARPA file's ``\\data\\`` header announces (0 if none)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    order = 0
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("ngram "):
                    order = max(order, int(line[6:].split("=")[0]))
                elif line.startswith("\\") and line.strip().endswith("-grams:"):
                    break
    except (OSError, EOFError, ValueError):
        return 0
    return order


def load_ngram(path: str | Path, backend: str = "auto") -> ArpaModel | KenLMModel:
    """The n-gram model at ``path``: the ``kenlm`` module when present (``auto``) or asked for
    (``kenlm``), else corpusforge's own ARPA reader (``python``); a KenLM binary needs the module.
    ``auto`` reads a unigram ARPA itself: KenLM's structures need at least a bigram model."""
    if backend not in BACKENDS:
        raise ValueError(f"perplexity: ngram_backend {backend!r} is invalid; allowed: {', '.join(BACKENDS)}")
    binary = is_kenlm_binary(path)
    if backend == "auto" and not binary and arpa_order(path) == 1:
        backend = "python"
    if backend == "auto":
        try:
            import kenlm  # noqa: F401
        except ImportError:
            if binary:
                raise ImportError(f"perplexity: {path} is a binary KenLM model, which needs the kenlm module: "
                                  "pip install 'corpusforge[kenlm]' (or give the ARPA file it was built from)") from None
            return ArpaModel(path)
        backend = "kenlm"
    if backend == "python":
        if binary:
            raise ValueError(f"perplexity: {path} is a binary KenLM model; ngram_backend python reads only ARPA "
                             "text: use ngram_backend kenlm or the ARPA file it was built from")
        return ArpaModel(path)
    return KenLMModel(path)
