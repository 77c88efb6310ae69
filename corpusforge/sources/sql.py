"""Rows of a SQL query (any SQLAlchemy URL), streamed in batches."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorpusforgeError
from corpusforge.extract.base import require
from corpusforge.registry import SOURCES
from corpusforge.sources.base import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Part,
    Refresh,
    RefreshPolicy,
    Source,
    TaskInput,
    check_max_document_bytes,
)
from corpusforge.sources.readers import template_fields, text_of

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext


@SOURCES.register("sql")
class SqlSource(Source):
    """Each row of ``query`` is a document: text from ``text_field`` or ``text_template``, the
    other columns (those the template does not use) metadata. ``url`` is a SQLAlchemy URL without a
    password (``sqlite:///x.db``, ``postgresql+psycopg://user@host/db``); put a URL with a password
    in an environment variable and name it in ``url_env`` instead, or use the driver's own chain
    (``PGPASSWORD``, ``.pgpass``).
    Rows are fetched ``batch_size`` at a time with a server-side cursor where the driver has one.

    Re-runs (``refresh``, default ``always``): the fingerprint is ``COUNT(*)`` over the query plus
    ``MAX(updated_column)`` when that column is named; without it, a result of at most
    ``fingerprint_rows`` rows is also hashed whole, so an edited row is seen too.
    """

    def __init__(
        self,
        name: str,
        query: str,
        url: str | None = None,
        url_env: str | None = None,
        text_field: str = "text",
        text_template: str | None = None,
        id_field: str | None = None,
        params: dict[str, Any] | None = None,
        batch_size: int = 1000,
        metadata: dict[str, Any] | None = None,
        refresh: Refresh = "always",
        refresh_ttl: str | float | None = None,
        updated_column: str | None = None,
        fingerprint_rows: int = 10_000,
        max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES,
    ):
        if (url is None) == (url_env is None):
            raise ValueError("give exactly one of url or url_env (an environment variable holding the URL)")
        if url is not None and _has_password(url):
            raise ValueError("url contains a password; put the URL in an environment variable and use url_env")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.source_name = name
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        self.query, self.url, self.url_env = query, url, url_env
        self.text_field, self.text_template, self.id_field = text_field, text_template, id_field
        self.params, self.batch_size = dict(params or {}), batch_size
        self.extra_metadata = metadata or {}
        if fingerprint_rows < 0:
            raise ValueError("fingerprint_rows must be >= 0")
        self.refresh = RefreshPolicy.of(refresh, refresh_ttl)
        self.updated_column, self.fingerprint_rows = updated_column, fingerprint_rows

    def _url(self) -> str:
        if self.url_env:
            value = os.environ.get(self.url_env)
            if not value:
                raise CorpusforgeError(f"source {self.source_name!r}: environment variable {self.url_env!r} is not set")
            return value
        assert self.url is not None
        return self.url

    def _display(self) -> str:
        sa = require("sqlalchemy", "remote")
        return sa.engine.make_url(self._url()).render_as_string(hide_password=True)

    def plan(self, task_bytes: int) -> list[TaskInput]:
        return [TaskInput(self.source_name, (Part(self._display(), key=self.query),))]

    def fingerprints(self, parts: list[Part], work: Path, since: float | None = None) -> list[dict[str, Any]]:
        """``{"count": rows, "max": newest updated_column}`` or ``{"count", "rows_sha256"}``."""
        sa = require("sqlalchemy", "remote")
        engine = sa.create_engine(self._url())
        inner = self.query.strip().rstrip(";")
        try:
            with engine.connect() as conn:
                cols = "COUNT(*)"
                if self.updated_column:
                    cols += f", MAX({engine.dialect.identifier_preparer.quote(self.updated_column)})"
                try:
                    row = conn.execute(sa.text(f"SELECT {cols} FROM ({inner}) AS corpusforge_q"), self.params).one()
                except sa.exc.SQLAlchemyError:  # a query this database cannot nest: count while hashing it all
                    conn.rollback()
                    return [self._streamed_fingerprint(sa, conn) for _ in parts]
                fp: dict[str, Any] = {"count": int(row[0])}
                if self.updated_column:
                    fp["max"] = _plain(row[1])
                elif fp["count"] <= self.fingerprint_rows:
                    fp = self._streamed_fingerprint(sa, conn)
        except sa.exc.SQLAlchemyError as exc:
            raise CorpusforgeError(f"source {self.source_name!r}: change check failed on {self._display()}: "
                                   f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
        finally:
            engine.dispose()
        return [fp for _ in parts]

    def _streamed_fingerprint(self, sa: Any, conn: Any) -> dict[str, Any]:
        """``{"count", "rows_sha256"}`` from every row of the query."""
        h, n = hashlib.sha256(), 0
        result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
            sa.text(self.query), self.params)
        for r in result:
            h.update(repr(tuple(r)).encode())
            n += 1
        return {"count": n, "rows_sha256": h.hexdigest()}

    def describe_change(self, old: dict[str, Any], new: dict[str, Any]) -> str:
        before, after = old.get("count"), new.get("count")
        if before is None:
            return f"{after} rows, not checked before"
        if after != before:
            delta = after - before
            return (f"{delta} new rows" if delta > 0 else f"{-delta} fewer rows") + f" (count {before} → {after})"
        if old.get("max") != new.get("max"):
            return f"rows updated (max({self.updated_column}) {old.get('max')} → {new.get('max')})"
        return f"rows changed (same count {after}, different content)"

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        sa = require("sqlalchemy", "remote")
        where = self._display()
        engine = sa.create_engine(self._url())
        row_no = 0
        used = template_fields(self.text_template) if self.text_template else frozenset()
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
                    sa.text(self.query), self.params)
                for batch in result.mappings().partitions(self.batch_size):
                    for row in batch:
                        fields = {k: _plain(v) for k, v in row.items()}
                        # A template renders the column values themselves (a NUMERIC 7.50 stays "7.50").
                        text, why = text_of(dict(row) if self.text_template else fields, self.text_field,
                                            self.text_template)
                        if text is None:
                            ctx.quarantine(f"{where} row {row_no}", why, None)
                        else:
                            doc_id = fields.get(self.id_field) if self.id_field else None
                            for key in used:  # already in the text
                                fields.pop(key, None)
                            meta = {**self.extra_metadata, **fields}
                            yield Document(text, str(doc_id) if doc_id is not None else
                                           make_doc_id(f"{self.source_name}/{self.query}", row_no, text),
                                           where, row_no, meta)
                        row_no += 1
        except sa.exc.SQLAlchemyError as exc:
            raise CorpusforgeError(f"source {self.source_name!r}: query failed on {where}: {exc}") from None
        finally:
            engine.dispose()


def _has_password(url: str) -> bool:
    head = url.split("://", 1)[-1].split("@", 1)
    return len(head) == 2 and ":" in head[0]


def _plain(v: Any) -> Any:
    """Column values as JSON-friendly Python values."""
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        # An integral NUMERIC is an int (7, not 7.0) where JSON can hold it.
        return int(v) if v.is_finite() and v == v.to_integral_value() and abs(v) < 2**63 else float(v)
    if isinstance(v, (bytes, memoryview)):
        return None
    return v
