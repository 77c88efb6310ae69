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
    """Train a tokenizer: ``text`` for subword vocabularies, ``image|audio|video`` for VQ codebooks."""


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


def _media_command(modality: str) -> click.Command:
    """``tokenizer train <modality>``: a k-means VQ codebook over the features of media INPUTS."""

    @click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
    @click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
                  help="Folder to write codebook.safetensors and codebook.json into.")
    @click.option("--codebook-size", type=click.IntRange(min=2), default=1024, show_default=True)
    @click.option("--image-size", type=click.IntRange(min=16), default=224, show_default=True)
    @click.option("--patch-size", type=click.IntRange(min=2), default=16, show_default=True)
    @click.option("--audio-sample-rate", type=click.IntRange(min=1000), default=16_000, show_default=True)
    @click.option("--n-mels", type=click.IntRange(min=8), default=80, show_default=True)
    @click.option("--audio-features", type=click.Choice(["log_mel", "mfcc"]), default="log_mel", show_default=True,
                  help="Audio rows: log-mel frames, or their MFCCs (as the recipe's media.audio_features).")
    @click.option("--n-mfcc", type=click.IntRange(min=2), default=13, show_default=True,
                  help="MFCCs kept per frame with --audio-features mfcc.")
    @click.option("--max-video-frames", type=click.IntRange(min=1), default=8, show_default=True)
    @click.option("--iterations", type=click.IntRange(min=1), default=20, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    def command(inputs: tuple[str, ...], output: str, codebook_size: int, image_size: int, patch_size: int,
                audio_sample_rate: int, n_mels: int, audio_features: str, n_mfcc: int, max_video_frames: int,
                iterations: int, seed: int) -> None:
        from corpusforge.media.train import train_codebook

        console = _console()
        cfg = {"image_size": image_size, "patch_size": patch_size, "audio_sample_rate": audio_sample_rate,
               "n_mels": n_mels, "audio_features": audio_features, "n_mfcc": n_mfcc,
               "max_video_frames": max_video_frames}
        try:
            book, files, quality = train_codebook(
                modality, [Path(p) for p in inputs], codebook_size, cfg, seed=seed, iterations=iterations,
                on_skip=lambda f, why: console.print(f"[yellow]skipped[/] {f}: {why}", highlight=False))
            book.save(output)
        except (CorpusforgeError, ValueError) as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            sys.exit(2)
        console.print(f"wrote {output} ({modality} codebook, {book.size} codes of dim "
                      f"{book.centroids.shape[1]}, from {files} files; reconstruction MSE "
                      f"{quality['mse']:.5f}, PSNR {quality['psnr_db']:.2f} dB)", highlight=False)

    command.__doc__ = f"Train a {modality} VQ codebook (k-means) on INPUTS (files or folders, by content)."
    return train.command(modality)(command)


for _modality in ("image", "audio", "video"):
    _media_command(_modality)


def _console():
    from rich.console import Console

    return Console(stderr=True)


COMMANDS = [tokenizer]
