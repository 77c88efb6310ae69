"""Throughput of the model-based steps: perplexity (HF causal LM, ARPA/KenLM n-grams), classifier,
LLM judge against the local test server, and each augmentation step.

Usage: python benchmarks/models.py [--model CAUSAL_LM_DIR] [--classifier CLS_DIR] [--docs 64]
       [--layers 6] [--width 768] [--max-length 256] [--batch-size 8] [--ngram-order 3]
       [--ngram-docs 2000] [--judge-docs 256] [--augment-docs 2000] [--only hf,ngram,judge,augment]

Input: WikiText-2 paragraphs (> 40 words) of ../shared/data/wikitext-2/valid.txt.
- HF: without ``--model`` / ``--classifier`` a random-weight GPT-2 / BERT of ``layers`` x ``width``
  (distilgpt2's shape by default) with a word vocabulary of that split; speed depends on the shape, not
  the weights (nothing can be downloaded here). One warm-up batch, then one pass through ``Step.scores``.
- n-gram: ``train_arpa`` builds an interpolated Kneser-Ney model of test.txt plus the Gutenberg books;
  load time and documents/s of corpusforge's reader and of the ``kenlm`` module (ARPA, and the binary
  when $KENLM_BUILD_BINARY or ``build_binary`` is found); batches of ``--batch-size`` x 4, as the step.
- judge: ``llm_judge`` against tests/models/llm_server.py on 127.0.0.1 (a fresh cache each run) at
  concurrency 1 and 8; once answering at once (client cost) and once with 0.1 s per answer ([slow]).
  The server runs in this process, so its CPU is in the CPU seconds.
- augmentation: each step with factor 1 over ``--augment-docs`` paragraphs in one task.
Every line gives wall seconds and CPU seconds of this process (all threads), since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpusforge.document import Document  # noqa: E402
from corpusforge.models.arpa import ArpaModel, KenLMModel, train_arpa  # noqa: E402
from corpusforge.observe.stats import TaskContext  # noqa: E402
from tests.models.tiny import word_tokenizer  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WIKI = DATA / "wikitext-2" / "valid.txt"


def paragraphs(n: int) -> list[str]:
    lines = WIKI.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if len(ln.split()) > 40 and not ln.strip().startswith("=")][:n]


def clock(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def report(name: str, n: int, unit: str, wall: float, cpu: float, extra: str = "") -> None:
    print(f"{name}: {n} {unit} in {wall:.2f}s wall / {cpu:.2f}s CPU = {n / wall:,.1f} {unit}/s wall, "
          f"{n / cpu:,.1f} {unit}/CPU-s{extra}", flush=True)


def random_models(root: Path, layers: int, width: int) -> tuple[Path, Path]:
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    corpus = paragraphs(10_000)
    lm, cls = root / "lm", root / "cls"
    for p in (lm, cls):
        tok = word_tokenizer(p, corpus)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=width, n_layer=layers,
                               n_head=width // 64, bos_token_id=2, eos_token_id=2)).save_pretrained(lm)
    BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=width, num_hidden_layers=layers,
                                             num_attention_heads=width // 64, intermediate_size=4 * width,
                                             num_labels=1, pad_token_id=1)).save_pretrained(cls)
    return lm, cls


def bench_hf(a: argparse.Namespace, tmp: Path) -> None:
    from corpusforge.models.classify import Classifier
    from corpusforge.models.perplexity import Perplexity

    docs = [Document(t, id=str(i), source="wikitext") for i, t in enumerate(paragraphs(a.docs))]
    lm, cls = (Path(a.model), Path(a.classifier)) if a.model and a.classifier else random_models(tmp, a.layers, a.width)
    shape = f" (max_length {a.max_length}, batch {a.batch_size}, {a.layers}x{a.width})"
    for name, step in (
        ("perplexity HF", Perplexity(model_path=str(lm), max_length=a.max_length, batch_size=a.batch_size, drop=False)),
        ("classifier HF", Classifier(model_path=str(cls), max_length=a.max_length, batch_size=a.batch_size, drop=False)),
    ):
        step.scores(docs[: a.batch_size])
        report(name, len(docs), "docs", *clock(lambda s=step: s.scores(docs)), shape)


def bench_ngram(a: argparse.Namespace, tmp: Path) -> None:
    train = [ln for ln in (DATA / "wikitext-2" / "test.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
    for book in sorted((DATA / "prose" / "gutenberg").glob("*.txt")):
        train += [ln for ln in book.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    arpa = tmp / f"bench{a.ngram_order}.arpa"
    wall, cpu = clock(lambda: train_arpa(train, arpa, order=a.ngram_order))
    print(f"train_arpa: {len(train)} lines -> {arpa.stat().st_size / 1e6:.1f} MB ARPA in {wall:.1f}s wall / "
          f"{cpu:.1f}s CPU", flush=True)
    texts = [p for p in WIKI.read_text(encoding="utf-8").split("\n \n") if len(p.split()) > 20]
    texts = (texts * (a.ngram_docs // len(texts) + 1))[: a.ngram_docs]
    words = sum(len(t.split()) for t in texts)
    batch = a.batch_size * 4
    models: list[tuple[str, Callable[[], object]]] = [("python reader, ARPA", lambda: ArpaModel(arpa))]
    try:
        import kenlm  # noqa: F401

        models.append(("kenlm module, ARPA", lambda: KenLMModel(arpa)))
        tool = os.environ.get("KENLM_BUILD_BINARY") or shutil.which("build_binary")
        if tool:
            binary = tmp / "bench.bin"
            subprocess.run([tool, str(arpa), str(binary)], check=True, capture_output=True)
            models.append(("kenlm module, binary", lambda: KenLMModel(binary)))
    except ImportError:
        print("kenlm module not installed: pip install 'corpusforge[kenlm]'")
    for name, load in models:
        held: list = []
        wall, cpu = clock(lambda ld=load, h=held: h.append(ld()))
        lm = held[0]
        size = f", {len(lm):,} n-grams" if isinstance(lm, ArpaModel) else ""
        print(f"load {name}: {wall:.2f}s wall / {cpu:.2f}s CPU{size}", flush=True)

        def score(m=lm) -> None:
            for i in range(0, len(texts), batch):
                m.perplexities(texts[i : i + batch])

        wall, cpu = clock(score)
        report(f"perplexity {name}", len(texts), "docs", wall, cpu,
               f" ({words / cpu:,.0f} words/CPU-s, order {a.ngram_order}, batches of {batch})")


def bench_judge(a: argparse.Namespace, tmp: Path) -> None:
    from corpusforge.models.judge import LLMJudge
    from tests.models.llm_server import ChatServer

    texts = paragraphs(a.judge_docs)
    with ChatServer() as srv:
        for latency, tag in (("none", ""), ("0.1s", "[slow] ")):
            n = len(texts) if not tag else min(len(texts), 64)
            for conc in (1, 8):
                docs = [Document(f"{tag}{t}", id=str(i), source="wikitext") for i, t in enumerate(texts[:n])]
                step = LLMJudge(base_url=srv.base_url, model="bench", concurrency=conc,
                                cache_path=str(tmp / f"judge-{latency}-{conc}.sqlite"))
                ctx = TaskContext("curate", 0, tmp / "judge")
                step.setup(ctx)
                wall, cpu = clock(lambda s=step, d=docs, c=ctx: list(s(iter(d), c)))
                report(f"llm_judge concurrency {conc}, server latency {latency}", n, "requests", wall, cpu)


def bench_augment(a: argparse.Namespace, tmp: Path) -> None:
    from corpusforge.models.augment import ParagraphExtraction, RandomEdit, SentenceShuffle, TokenNoise

    texts = paragraphs(a.augment_docs)
    pairs = ["\n\n".join(texts[i : i + 3]) for i in range(0, len(texts), 3)]  # multi-paragraph documents
    for step, corpus in ((SentenceShuffle(), texts), (ParagraphExtraction(min_chars=50), pairs),
                         (TokenNoise(), texts), (RandomEdit(), texts)):
        docs = [Document(t, id=str(i), source="wikitext") for i, t in enumerate(corpus)]
        ctx = TaskContext("curate", 0, tmp / "augment")
        step.setup(ctx)
        out: list = []
        wall, cpu = clock(lambda s=step, d=docs, c=ctx, o=out: o.extend(s(iter(d), c)))
        report(f"augment {step.name}", len(docs), "docs", wall, cpu, f" ({len(out) - len(docs)} copies)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--classifier")
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--ngram-order", type=int, default=3)
    ap.add_argument("--ngram-docs", type=int, default=2000)
    ap.add_argument("--judge-docs", type=int, default=256)
    ap.add_argument("--augment-docs", type=int, default=2000)
    ap.add_argument("--only", default="hf,ngram,judge,augment", help="comma-separated parts to run")
    a = ap.parse_args()
    parts = {"hf": bench_hf, "ngram": bench_ngram, "judge": bench_judge, "augment": bench_augment}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only.split(","):
            parts[name](a, Path(tmp))


if __name__ == "__main__":
    main()
