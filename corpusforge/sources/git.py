"""A local git repository at a commit: every text file, with its path, language and license.

Files are read from the commit's tree (``git ls-tree`` + ``git cat-file --batch``), not from the
working copy, so uncommitted edits never leak in and the output is a pure function of the commit.
The repository's license file (``LICENSE*``, ``COPYING*``, ``UNLICENSE`` at the root) is recorded
for every document, with an SPDX guess when its text is a well-known license.
"""

from __future__ import annotations

import fnmatch
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorpusforgeError
from corpusforge.extract.detect import HEAD_BYTES, sniff
from corpusforge.extract.formats import is_license_file
from corpusforge.registry import SOURCES
from corpusforge.sources.base import Part, Source, TaskInput

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

_SPDX_HINTS = [
    ("Apache License", "Version 2.0", "Apache-2.0"),
    ("MIT License", "", "MIT"),
    ("Permission is hereby granted, free of charge", "", "MIT"),
    ("This is free and unencumbered software released into the public domain", "", "Unlicense"),
    ("GNU GENERAL PUBLIC LICENSE", "Version 3", "GPL-3.0"),
    ("GNU GENERAL PUBLIC LICENSE", "Version 2", "GPL-2.0"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "", "LGPL"),
    ("Mozilla Public License Version 2.0", "", "MPL-2.0"),
    ("Redistribution and use in source and binary forms", "Neither the name", "BSD-3-Clause"),
    ("Redistribution and use in source and binary forms", "", "BSD-2-Clause"),
]


def guess_spdx(text: str) -> str:
    """A short SPDX id for common license texts, or ``""`` when unsure."""
    for needle, also, spdx in _SPDX_HINTS:
        if needle.lower() in text.lower() and also.lower() in text.lower():
            return spdx
    return ""


def _git(repo: str, *args: str, data: bytes | None = None) -> bytes:
    try:
        return subprocess.run(["git", "-C", repo, *args], input=data, capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        raise CorpusforgeError(f"git {' '.join(args[:2])} failed in {repo}: {exc.stderr.decode(errors='replace').strip()}") from None
    except FileNotFoundError:
        raise CorpusforgeError("the git source needs the git command on PATH") from None


@SOURCES.register("git")
class GitSource(Source):
    """Text and code files of ``path`` (a local repository) at ``rev`` (default HEAD).

    ``include``/``exclude`` are globs on the path inside the repository; files over
    ``max_file_bytes`` and binary files (images, archives, NUL bytes) are skipped, not read.
    """

    hash_inputs = False

    def __init__(
        self,
        name: str,
        path: str,
        rev: str = "HEAD",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        max_file_bytes: int = 1_000_000,
        metadata: dict[str, Any] | None = None,
    ):
        self.source_name = name
        self.path, self.rev = str(Path(path).expanduser()), rev
        self.include, self.exclude = include or [], exclude or []
        self.max_file_bytes = max_file_bytes
        self.extra_metadata = metadata or {}

    def plan(self, task_bytes: int) -> list[TaskInput]:
        commit = _git(self.path, "rev-parse", "--verify", f"{self.rev}^{{commit}}").decode().strip()
        return [TaskInput(self.source_name, (Part(str(Path(self.path).resolve()), key=commit),))]

    def _tree(self, commit: str) -> list[tuple[str, str, int]]:
        """``(blob sha, path, size)`` of every file at ``commit``."""
        out = []
        for line in _git(self.path, "ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
            if not line:
                continue
            meta, _, path = line.partition(b"\t")
            mode, kind, sha, size = meta.split()
            if kind != b"blob" or mode == b"120000":  # skip submodules and symlinks
                continue
            out.append((sha.decode(), path.decode("utf-8", "surrogateescape"), int(size)))
        return out

    def _wanted(self, path: str) -> bool:
        if self.include and not any(fnmatch.fnmatch(path, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatch(path, p) for p in self.exclude)

    def _blobs(self, shas: list[str]) -> Iterator[bytes]:
        out = _git(self.path, "cat-file", "--batch", data="".join(s + "\n" for s in shas).encode())
        pos = 0
        for _ in shas:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            start = header_end + 1
            yield out[start:start + size]
            pos = start + size + 1

    def read(self, task: TaskInput, ctx: TaskContext) -> Iterator[Document]:
        commit = task.parts[0].key
        tree = self._tree(commit)
        licenses = [(p, sha) for sha, p, _ in tree if "/" not in p and is_license_file(p)]
        license_meta: dict[str, Any] = {}
        if licenses:
            texts = list(self._blobs([sha for _, sha in licenses]))
            license_meta["license_file"] = licenses[0][0]
            spdx = [s for s in (guess_spdx(t.decode("utf-8", "replace")) for t in texts) if s]
            if spdx:
                license_meta["license"] = " OR ".join(dict.fromkeys(spdx))
        wanted = [(sha, p) for sha, p, size in tree if size <= self.max_file_bytes and self._wanted(p)]
        repo = Path(task.parts[0].path).name
        for (_, path), blob in zip(wanted, self._blobs([sha for sha, _ in wanted]), strict=True):
            kind = sniff(blob[:HEAD_BYTES], path)
            if kind.family in ("binary", "image", "audio", "video", "pdf", "archive", "legacy_office",
                               "docx", "pptx", "xlsx", "epub", "odf", "parquet") or not blob.strip():
                continue
            try:
                text = blob.decode("utf-8")
            except UnicodeDecodeError as exc:
                ctx.quarantine(f"{task.parts[0].path}@{commit[:12]}:{path}", f"invalid UTF-8 at byte {exc.start}", None)
                continue
            meta = {**self.extra_metadata, "repo": repo, "commit": commit, "path": path, **license_meta,
                    "language": kind.language or ("license" if is_license_file(path) else kind.family),
                    "source_name": self.source_name}
            yield Document(text, make_doc_id(f"{self.source_name}/{path}", 0, text),
                           f"{task.parts[0].path}/{path}", 0, meta)
