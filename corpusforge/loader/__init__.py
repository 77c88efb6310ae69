"""Read corpusforge shards for training: exact-resume streaming for PyTorch, JAX and NumPy.

``ShardIterator`` needs only NumPy; ``ShardDataset`` / ``ShardDataLoader`` import PyTorch on
first use.
"""

from __future__ import annotations

from typing import Any

from corpusforge.loader.dataset import ShardIterator
from corpusforge.loader.order import EpochOrder
from corpusforge.loader.validate import validate_epoch

__all__ = ["ShardIterator", "ShardDataset", "ShardDataLoader", "EpochOrder", "validate_epoch"]


def __getattr__(name: str) -> Any:
    if name in ("ShardDataset", "ShardDataLoader"):
        from corpusforge.loader import pytorch

        return getattr(pytorch, name)
    raise AttributeError(f"module 'corpusforge.loader' has no attribute {name!r}")
