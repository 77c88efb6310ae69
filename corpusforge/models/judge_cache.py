"""The LLM judge's answers on disk, so that a re-run (or a resumed crash) pays for no request twice.

One SQLite file in WAL mode: several worker processes read and write it at once (each opens its own
connection; a writer waits up to ``timeout`` seconds for the lock). Keys are 32-byte digests of the
model, the prompt template and the document text; see ``judge_key``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class Judgement:
    """One answer: the score (None when unscored), its reason, how it was parsed, tokens it cost."""

    score: float | None
    reason: str
    parse: str  # "json", "fallback" or "unscored"
    prompt_tokens: int = 0
    completion_tokens: int = 0


def judge_key(model: str, template: str, text: str) -> bytes:
    """Cache key of (model, prompt template and decoding settings, document hash)."""
    doc = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return hashlib.sha256(orjson.dumps([model, template]) + doc).digest()


class JudgeCache:
    """``key -> Judgement`` in one SQLite file, opened lazily per process (safe after fork)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0):
        self.path, self.timeout = Path(path), timeout
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS judgements (key BLOB PRIMARY KEY, score REAL, reason TEXT,"
                             " parse TEXT, prompt_tokens INTEGER, completion_tokens INTEGER)")
            except sqlite3.DatabaseError as e:
                raise ValueError(f"llm_judge: cannot use {self.path} as the judgement cache: {e}") from e
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, keys: list[bytes]) -> dict[bytes, Judgement]:
        """The cached judgements among ``keys``."""
        out: dict[bytes, Judgement] = {}
        db = self._db()
        for i in range(0, len(keys), 500):  # SQLite's default limit on bound parameters is 999
            chunk = keys[i : i + 500]
            rows = db.execute(f"SELECT key, score, reason, parse, prompt_tokens, completion_tokens FROM judgements "
                              f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, *rest in rows:
                out[bytes(key)] = Judgement(*rest)
        return out

    def put_many(self, items: dict[bytes, Judgement]) -> None:
        """Store ``items`` in one transaction."""
        if not items:
            return
        db = self._db()
        rows = [(k, j.score, j.reason, j.parse, j.prompt_tokens, j.completion_tokens) for k, j in items.items()]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM judgements").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
