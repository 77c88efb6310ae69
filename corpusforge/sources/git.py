"""A git repository at a commit, local or at a remote URL: every text file, with its path, language
and license.

Files are read from the commit's tree (``git ls-tree`` + ``git cat-file --batch``), not from the
working copy, so uncommitted edits never leak in and the output is a pure function of the commit.
The repository's license file (``LICENSE*``, ``COPYING*``, ``UNLICENSE`` at the root) is recorded
for every document, with an SPDX guess when its text is a well-known license.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusforge.document import Document, make_doc_id
from corpusforge.errors import CorpusforgeError
from corpusforge.extract.detect import HEAD_BYTES, sniff
from corpusforge.extract.formats import is_license_file
from corpusforge.redact_urls import redact_url
from corpusforge.registry import SOURCES
from corpusforge.sources.base import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Part,
    Source,
    TaskInput,
    check_max_document_bytes,
)

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


# Transports a remote may use: git's ext:: and fd:: run commands, so they (and every other) are refused.
_PROTOCOLS = "https:http:ssh:git:file"
_REMOTE = re.compile(r"^(?:(https?|ssh|git|file)://|[\w.-]+@[\w.-]+:(?!//))")


def is_remote(path: str) -> bool:
    """Whether ``path`` names a repository to clone: an https/http/ssh/git/file URL or ``user@host:repo``."""
    return bool(_REMOTE.match(path))


def _git(repo: str, *args: str, data: bytes | None = None, where: str | None = None) -> bytes:
    env = {**os.environ, "GIT_ALLOW_PROTOCOL": _PROTOCOLS, "GIT_TERMINAL_PROMPT": "0"}
    try:
        return subprocess.run(["git", "-C", repo, *args], input=data, capture_output=True, check=True, env=env).stdout
    except subprocess.CalledProcessError as exc:
        why = exc.stderr.decode(errors="replace").strip().replace("\n", "; ")
        cmd = list(args)
        while cmd[:1] == ["-c"]:  # name the command, not its -c settings
            cmd = cmd[2:]
        raise CorpusforgeError(f"git {' '.join(cmd[:2])} failed in {where or repo}: {redact_url(why)}") from None
    except FileNotFoundError:
        raise CorpusforgeError("the git source needs the git command on PATH") from None


def _cache_root() -> Path:
    """Where remote repositories are cloned: ``$CORPUSFORGE_GIT_CACHE``, else the user's cache folder."""
    override = os.environ.get("CORPUSFORGE_GIT_CACHE")
    root = Path(override) if override else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpusforge" / "git"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _mirror_dir(url: str) -> Path:
    """The cached bare clone of ``url``: one folder per URL."""
    return _cache_root() / hashlib.sha256(url.encode()).hexdigest()[:24]


def mirror_remote(url: str) -> str:
    """A bare clone of ``url`` in the cache, fetched up to date (all branches and tags); its path."""
    where = redact_url(url)
    if url.startswith("-"):
        raise CorpusforgeError(f"git source: {where!r} is not a repository URL")
    dest = _mirror_dir(url)
    if not (dest / "HEAD").exists():
        tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
        _git(str(dest.parent), "-c", "protocol.ext.allow=never", "clone", "--bare", "--quiet", "--",
             url, str(tmp), where=where)
        os.replace(tmp, dest)
    else:
        _git(str(dest), "-c", "protocol.ext.allow=never", "fetch", "--quiet", "--prune", "--tags", "origin",
             "+refs/heads/*:refs/heads/*", where=where)
    return str(dest)


@SOURCES.register("git")
class GitSource(Source):
    """Text and code files of ``path`` at ``rev`` (default HEAD). ``path`` is a local repository,
    or a remote one (``https://host/org/repo.git``, ``ssh://``, ``git@host:org/repo``, ``file://``)
    cloned bare into the cache (``$CORPUSFORGE_GIT_CACHE`` or ``~/.cache/corpusforge/git``) and
    fetched again at each plan, so a re-run reads the commit ``rev`` names now.

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
        max_document_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES,
    ):
        self.source_name = name
        self.max_document_bytes = check_max_document_bytes(max_document_bytes)
        self.url = path if is_remote(path) else None
        self.path, self.rev = (path if self.url else str(Path(path).expanduser())), rev
        self.include, self.exclude = include or [], exclude or []
        self.max_file_bytes = max_file_bytes
        self.extra_metadata = metadata or {}

    def _repo(self) -> str:
        """The local repository git reads: the path, or the cached clone of the URL."""
        if self.url is None:
            return self.path
        cached = _mirror_dir(self.url)
        return str(cached) if (cached / "HEAD").exists() else mirror_remote(self.url)

    def plan(self, task_bytes: int) -> list[TaskInput]:
        repo = mirror_remote(self.url) if self.url else self.path
        commit = _git(repo, "rev-parse", "--verify", f"{self.rev}^{{commit}}",
                      where=redact_url(self.url) if self.url else None).decode().strip()
        shown = redact_url(self.url) if self.url else str(Path(self.path).resolve())
        return [TaskInput(self.source_name, (Part(shown, key=commit),))]

    def _tree(self, commit: str) -> list[tuple[str, str, int]]:
        """``(blob sha, path, size)`` of every file at ``commit``."""
        out = []
        for line in _git(self._repo(), "ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
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
        out = _git(self._repo(), "cat-file", "--batch", data="".join(s + "\n" for s in shas).encode())
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
        repo = Path(task.parts[0].path.rstrip("/")).name.removesuffix(".git")
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
                    "language": kind.language or ("license" if is_license_file(path) else kind.family)}
            yield Document(text, make_doc_id(f"{self.source_name}/{path}", 0, text),
                           f"{task.parts[0].path}/{path}", 0, meta)
