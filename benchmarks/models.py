"""Throughput of the model-based curation steps on CPU (or GPU): documents/s and tokens/s.

Usage: python benchmarks/models.py [--model CAUSAL_LM_DIR] [--classifier CLS_DIR] [--docs 64]
       [--layers 6] [--width 768] [--max-length 256] [--batch-size 8]

Input: the first ``docs`` body paragraphs (> 40 words) of ../shared/data/wikitext-2/valid.txt.
Without ``--model`` / ``--classifier`` a random-weight GPT-2 / BERT of ``layers`` x ``width``
(distilgpt2's shape by default) with a word vocabulary trained on that split is written to a temp
folder: speed depends on the shape, not the weights, since nothing can be downloaded here.
One warm-up batch, then one timed pass through ``Step.scores``; wall-clock time is reported.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from corpusforge.document import Document
from corpusforge.models.classify import Classifier
from corpusforge.models.perplexity import Perplexity

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2" / "valid.txt"


def paragraphs(n: int) -> list[str]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if len(ln.split()) > 40 and not ln.strip().startswith("=")][:n]


def save_tokenizer(path: Path, corpus: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    fast.save_pretrained(path)
    return fast


def random_models(root: Path, layers: int, width: int) -> tuple[Path, Path]:
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    corpus = paragraphs(10_000)
    lm, cls = root / "lm", root / "cls"
    for p in (lm, cls):
        tok = save_tokenizer(p, corpus)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=width, n_layer=layers,
                               n_head=width // 64, bos_token_id=2, eos_token_id=2)).save_pretrained(lm)
    BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=width, num_hidden_layers=layers,
                                             num_attention_heads=width // 64, intermediate_size=4 * width,
                                             num_labels=1, pad_token_id=1)).save_pretrained(cls)
    return lm, cls


def timed(step, docs: list[Document], batch: int) -> float:
    step.scores(docs[:batch])
    t = time.perf_counter()
    step.scores(docs)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--classifier")
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()
    docs = [Document(t, id=str(i), source="wikitext") for i, t in enumerate(paragraphs(a.docs))]
    with tempfile.TemporaryDirectory() as tmp:
        lm, cls = (Path(a.model), Path(a.classifier)) if a.model and a.classifier else random_models(Path(tmp), a.layers, a.width)
        for name, step in (
            ("perplexity", Perplexity(model_path=str(lm), max_length=a.max_length, batch_size=a.batch_size, drop=False)),
            ("classifier", Classifier(model_path=str(cls), max_length=a.max_length, batch_size=a.batch_size, drop=False)),
        ):
            s = timed(step, docs, a.batch_size)
            print(f"{name}: {len(docs)} docs in {s:.2f}s = {len(docs) / s:.1f} docs/s "
                  f"(max_length {a.max_length}, batch {a.batch_size})")


if __name__ == "__main__":
    main()
