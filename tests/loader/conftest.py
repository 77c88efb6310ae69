from pathlib import Path

import pytest

from corpusforge import run

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def run_recipe(out: Path, tokenizer: dict | None = None, **sharding) -> Path:
    """A real pipeline run on one Gutenberg book, one document per paragraph, small shards."""
    run(
        {
            "sources": [{"path": str(DATA / "prose" / "gutenberg" / "pg26184.txt"), "text_unit": "paragraph"}],
            "steps": [],
            "tokenizer": tokenizer or {"vocab_size": 400},
            "sharding": {"sequence_length": 32, "max_shard_bytes": 10_000, "splits": {"train": 0.9, "val": 0.1},
                         **sharding},
        },
        output=str(out),
        workers=1,
    )
    return out


def make_shards(out: Path, **sharding) -> Path:
    return run_recipe(out, None, **sharding)


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("loader") / "out")
