"""``corpusforge tokenizer train text``: train a text tokenizer outside a recipe run.

It trains exactly what a recipe's ``tokenizer`` section trains (same trainers, the 16 fixed special
tokens at ids 0-15), from files and folders given on the command line or a multi-corpus manifest.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from corpusforge.errors import CorpusforgeError


@click.group()
def tokenizer() -> None:
    """Train tokenizers."""


@tokenizer.group()
def train() -> None:
    """Train a tokenizer: ``text`` for subword vocabularies."""


TEXT_TYPES = ["bpe", "unigram", "wordpiece", "sentencepiece_unigram", "sentencepiece_bpe"]


@train.command("text")
@click.argument("inputs", nargs=-1, type=click.Path(exists=True))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Where to write the tokenizer (tokenizer.json, or a .model for SentencePiece types).")
@click.option("--type", "kind", type=click.Choice(TEXT_TYPES), default="bpe", show_default=True)
@click.option("--vocab-size", type=click.IntRange(min=300), default=32_000, show_default=True)
@click.option("--min-frequency", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="A multi-corpus manifest (YAML, per-source max_samples) used after the INPUTS.")
@click.option("--text-unit", type=click.Choice(["file", "line", "paragraph"]), default="file", show_default=True,
              help="How plain-text INPUTS are cut into documents.")
@click.option("--max-samples", type=click.IntRange(min=1), help="Documents taken from each of the INPUTS.")
@click.option("--sample-bytes", type=click.IntRange(min=1), default=200_000_000, show_default=True,
              help="At most this many characters of text are used for training.")
@click.option("--special-token", "extra", multiple=True, help="A user-defined special token (after id 15); repeatable.")
def train_text(inputs: tuple[str, ...], output: str, kind: str, vocab_size: int, min_frequency: int,
               manifest: str | None, text_unit: str, max_samples: int | None, sample_bytes: int,
               extra: tuple[str, ...]) -> None:
    """Train a BPE/Unigram/WordPiece/SentencePiece tokenizer on INPUTS (files or folders)."""
    from corpusforge.config import build
    from corpusforge.recipe import TokenizerConfig
    from corpusforge.registry import SOURCES
    from corpusforge.state import atomic_write_bytes
    from corpusforge.tokenize.encoder import load_encoder, train_to_bytes
    from corpusforge.tokenize.manifest import read_manifest, source_texts

    console = _console()
    if not inputs and not manifest:
        console.print("[bold red]error:[/] give INPUTS (files or folders) or --manifest")
        sys.exit(2)
    if kind.startswith("sentencepiece") != output.endswith(".model"):
        console.print(f"[bold red]error:[/] --output {output!r}: SentencePiece types write a '.model' file, "
                      "the others a tokenizer.json (any name not ending in .model)", highlight=False)
        sys.exit(2)
    try:
        cfg = TokenizerConfig(type=kind, vocab_size=vocab_size, min_frequency=min_frequency,
                              extra_special_tokens=list(extra))
        sources = [(build(SOURCES, {"type": "files", "name": f"input{i}", "path": str(Path(p).resolve()),
                                    "text_unit": text_unit}, f"inputs[{i}]"), max_samples)
                   for i, p in enumerate(inputs)]
        if manifest:
            sources += read_manifest(manifest)
        with tempfile.TemporaryDirectory(prefix="corpusforge-tok-") as scratch:
            data = train_to_bytes(cfg, source_texts(sources, Path(scratch), sample_bytes))
        out = Path(output)
        atomic_write_bytes(out, data)
        enc = load_encoder(out)
    except CorpusforgeError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    console.print(f"wrote {out} ({kind}, vocabulary {enc.vocab_size:,})", highlight=False)


def _console():
    from rich.console import Console

    return Console(stderr=True)


COMMANDS = [tokenizer]
