"""The demo recipe: the interpreter's own documentation and standard library, every stage.

It needs no download and no data in the repository: every Python installation carries real prose
(``help()`` topics) and real code (the standard library sources).
"""

from __future__ import annotations

import sysconfig
from typing import Any

# Standard-library packages whose sources the demo reads besides the top-level modules:
# a few MB of varied, real, permissively licensed (PSF) code.
DEMO_PACKAGES = ("email", "json", "http", "asyncio", "concurrent", "logging", "importlib", "xml", "urllib")


def demo_recipe(output: str = "corpusforge-demo", preset: str | None = None) -> dict[str, Any]:
    stdlib = sysconfig.get_paths()["stdlib"]
    recipe: dict[str, Any] = {
        "name": "demo",
        "seed": 1234,
        "sources": [
            {"type": "python_docs", "name": "python_docs"},
            {
                "type": "files",
                "name": "python_stdlib",
                "path": stdlib,
                "include": ["*.py"],
                "exclude": ["*/*"],
                "metadata": {"language": "python", "license": "PSF-2.0"},
            },
            {
                "type": "files",
                "name": "python_stdlib_packages",
                "path": [f"{stdlib}/{pkg}" for pkg in DEMO_PACKAGES],
                "include": ["*.py"],
                "exclude": ["test/*", "tests/*", "*/test/*", "*/tests/*"],
                "metadata": {"language": "python", "license": "PSF-2.0"},
            },
        ],
        "steps": [
            {"type": "normalize", "form": "NFC"},
            {"type": "quality_thresholds", "min_chars": 50, "max_chars": 100_000, "min_words": 10,
             "max_words": 50_000, "min_unique_word_ratio": 0.1, "max_special_char_ratio": 0.3},
            {"type": "exact_dedup"},
        ],
        "tokenizer": {"type": "bpe", "vocab_size": 8000, "min_frequency": 2},
        "sharding": {"sequence_length": 1024, "max_shard_bytes": 20_000_000,
                     "splits": {"train": 0.98, "val": 0.01, "test": 0.01}},
        "output": {"path": output, "documents": "parquet"},
        "executor": {"task_bytes": 2_000_000},
    }
    if preset:
        recipe["preset"] = preset
    return recipe


INIT_TEMPLATE = """\
# corpusforge recipe, written by `corpusforge init`. Run it with: corpusforge run {path}
# It is the demo's recipe: the interpreter's documentation topics and standard library sources.
# Replace the sources with your own data; every option is described in docs/recipe.md.
{preset_line}name: demo
seed: 1234                     # every random choice (splits, sampling) derives from this

sources:                       # read in this order; each file, row group or byte range is a task
  - type: python_docs          # help() topics of this Python: real prose, offline
    name: python_docs
  - type: files                # local paths, folders, globs, or any fsspec URL (s3://, gs://, ...)
    name: python_stdlib
    path: {stdlib}
    include: ["*.py"]          # globs on the path relative to the root
    exclude: ["*/*"]           # top-level modules only
    metadata: {{language: python, license: PSF-2.0}}
  - type: files
    name: python_stdlib_packages
    path:
{package_paths}
    include: ["*.py"]
    exclude: ["test/*", "tests/*", "*/test/*", "*/tests/*"]
    metadata: {{language: python, license: PSF-2.0}}
    # format: auto             # auto | jsonl | json | parquet | csv | tsv | text
    # text_field: text         # the text column of jsonl/json/parquet/csv
    # text_unit: file          # text files: file | line | paragraph

steps:                         # run in order; `corpusforge steps` lists every registered step
  - type: normalize            # Unicode NFC, line endings, control characters, trailing spaces
    form: NFC
  - type: quality_thresholds   # the seed thresholds
    min_chars: 50
    max_chars: 100000
    min_words: 10
    max_words: 50000
    min_unique_word_ratio: 0.1
    max_special_char_ratio: 0.3
  - type: exact_dedup          # whole-run exact dedup on normalized text (128-bit hashes)

tokenizer:                     # train byte-level BPE on the curated text, or set path: tokenizer.json
  type: bpe
  vocab_size: 8000
  min_frequency: 2

sharding:
  sequence_length: 1024        # [BOS] doc [EOS] concatenated and cut into windows of this length
  max_shard_bytes: 20000000
  splits: {{train: 0.98, val: 0.01, test: 0.01}}   # by hash of document id and seed

output:
  path: {output}
  documents: parquet           # also write the kept documents (none | jsonl | parquet)
  audit: false                 # audit log of every drop/modification (compressed JSONL)

executor:
  task_bytes: 2000000          # input bytes per task (small files grouped, large ones split)
  # workers: 4                 # default: all cores (or --workers N)
  # kind: ray                  # run tasks on Ray (pip install 'corpusforge[ray]'; or --executor ray)
  # address: auto              # the Ray cluster (or --address); none starts a local instance
"""


_PRESET_SUPPLIED = ("  sequence_length:", "  max_shard_bytes:", "  vocab_size:", "  audit:")


MULTIMODAL_TEMPLATE = """\
# corpusforge recipe, written by `corpusforge init --preset multimodal`. Run it with: corpusforge run {path}
# Text, images, audio and video from one folder, into interleaved shards:
#   [BOS] text <IMG> image codes <IMG_END> text <AUDIO> audio codes <AUDIO_END> ... [EOS]
# Media files become documents (a .txt/.json beside one, same stem, is its caption), HTML keeps its
# images where they were, and a video brings its audio track. See docs/media.md.
preset: multimodal             # sequence_length 4096, 500 MB shards, vocab 32000, the media section on
name: multimodal
seed: 1234

sources:
  - type: files
    name: mixed
    path: {media}
    # media: pass              # what the media section sets for every files source

steps:
  - type: normalize
  - type: quality_thresholds   # judges text; documents carrying media pass every text filter
  - type: exact_dedup          # media documents compared by their media's content hash too

tokenizer:                     # the text vocabulary; media codes get id ranges after it
  type: bpe
  vocab_size: 8000
  min_frequency: 2

media:
  codebook_size: 256           # codes per modality, trained on the corpus in the tokenizer stage
  # codebooks: {{image: cb/image}}   # or load codebooks (`corpusforge tokenizer train image ...`)
  image_size: 224
  patch_size: 16               # (224/16)^2 = 196 codes per image
  audio_features: log_mel      # log_mel | mfcc
  video_sampling: uniform      # uniform | fps (video_fps frames a second)
  max_video_frames: 8

sharding:
  sequence_length: 2048
  max_shard_bytes: 20000000

output:
  path: {output}
  documents: parquet
"""


WIKITEXT2_TEMPLATE = """\
# corpusforge recipe, written by `corpusforge init --preset wikitext2`. Run it with: corpusforge run {path}
# It is recipes/wikitext2-embeddings.yaml: WikiText-2 paragraphs with Qwen3-Embedding vectors (last-token
# pooling, L2 norm), split 80/10/10 by article; needs `pip install 'corpusforge[embed]'`.
# Writes embeddings/{{train,val,test}}.parquet + embeddings/{{train,val,test}}_embeddings.safetensors
# besides the usual token shards; see docs/embeddings.md.
# The model is a local folder (relative paths are relative to this file), made once where the hub is reachable:
#   huggingface-cli download Qwen/Qwen3-Embedding-0.6B --local-dir models/Qwen3-Embedding-0.6B
# The source folder holds the raw WikiText-2 files (train.txt, valid.txt, test.txt). Where the Hugging
# Face hub is reachable, use the dataset instead of the files:
#   sources:
#     - {{name: wikitext2, type: hf_dataset, dataset: Salesforce/wikitext, config: wikitext-2-v1, split: train}}
name: wikitext2-embeddings
seed: 4
sources:
  - name: wikitext2
    path: {data}
    include: ["*.txt"]
    text_unit: file
steps:
  - type: wikitext_paragraphs          # lines -> paragraphs between blank/heading lines; title/section kept
  - type: wikitext_clean               # drop headings, @-@ -> -, @.@ -> ., @,@ -> ,, drop <unk>, whitespace
    min_letter_ratio: 0.5              # drop paragraphs that are mostly punctuation or digits (title/section too)
  - type: token_length                 # tokens of the embedding model's own tokenizer
    tokenizer: models/Qwen3-Embedding-0.6B
    min_tokens: 100
    max_tokens: 2000
  - type: exact_dedup
embeddings:
  model: models/Qwen3-Embedding-0.6B                         # a local folder; nothing is downloaded
  pooling: last_token                  # Qwen3-Embedding: the last token's hidden state, left padding
  normalize: true                      # L2
  layout: splits                       # train.parquet + train_embeddings.safetensors, val..., test...
  long_texts: truncate                 # over the window: warned and counted; chunk embeds them whole
  dtype: float32
  batch_size: 16
tokenizer:
  vocab_size: 8000
sharding:
  splits: {{train: 0.8, val: 0.1, test: 0.1}}
  split_by: article                    # by article (wikitext_paragraphs numbers them): all its paragraphs in one split
  sequence_length: 512
output:
  path: {output}
"""


def init_text(path: str, output: str = "corpusforge-demo", preset: str | None = None, media: str = "media",
              data: str = "wikitext-2") -> str:
    """The commented demo recipe; with a preset, the values the preset supplies are left to it.
    ``multimodal`` writes a recipe over one folder of text and media (``media``) instead, and
    ``wikitext2`` the WikiText-2 embeddings recipe over the files in ``data``."""
    if preset == "multimodal":
        return MULTIMODAL_TEMPLATE.format(path=path, output=output, media=media)
    if preset == "wikitext2":
        return WIKITEXT2_TEMPLATE.format(path=path, output=output, data=data)
    stdlib = sysconfig.get_paths()["stdlib"]
    text = INIT_TEMPLATE.format(
        path=path,
        stdlib=stdlib,
        output=output,
        package_paths="\n".join(f"      - {stdlib}/{pkg}" for pkg in DEMO_PACKAGES),
        preset_line=f"preset: {preset}              # small | production | multimodal\n" if preset else "",
    )
    if preset:
        text = "\n".join(
            f"  # {line.strip()}  (the preset sets this)" if line.startswith(_PRESET_SUPPLIED) else line
            for line in text.splitlines()
        ) + "\n"
    return text
