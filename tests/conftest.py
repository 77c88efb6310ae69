"""Shared fixtures: the real data in ../shared/data and small recipe builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA} is missing: the tests read the real data in ../shared/data")
    return SHARED_DATA


def small_recipe(sources: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    """A recipe that runs in seconds: small vocabulary, short sequences, small tasks."""
    recipe: dict[str, Any] = {
        "name": "test",
        "seed": 7,
        "sources": sources,
        "tokenizer": {"vocab_size": 600},
        "sharding": {"sequence_length": 128, "max_shard_bytes": 200_000},
        "executor": {"task_bytes": 300_000},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    return recipe


# -- exit status ------------------------------------------------------------------------------------
# One pytest process loads Ray's core worker, a JVM (Spark), torch, faiss, pyarrow and the Rust pools
# of tokenizers, each with native threads and static destructors. A full run once ended in SIGSEGV
# (exit 139) during interpreter finalization, after every test had passed and the summary was
# printed: a library tearing down while its own threads still ran. Nothing of corpusforge runs then.
# So once pytest has finished (reports and summary written), the process exits with pytest's own
# status without finalizing; CORPUSFORGE_TEST_FINALIZE=1 keeps the normal exit to look for such crashes.
_STATUS: list[int] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import sys

    if _STATUS and os.environ.get("CORPUSFORGE_TEST_FINALIZE") != "1" and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_STATUS[-1])
