"""Where the loader's shard files come from: a local folder, or an fsspec URL streamed shard by shard.

A URL output (``s3://``, ``gs://``, ``hf://``, ``http(s)://``) is never copied whole: the loader
reads ``shard_index.json``, then fetches each shard of the split it reads (main file and
sidecars) into a local cache the first time it is needed, a background thread fetching the next
ones ahead. The cache holds at most ``cache_limit`` bytes: before a fetch, the shards used least
recently are removed (never one this process has open or is about to read), so a run over an
output larger than the disk works. ``file://`` URLs are read in place.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from corpusforge.layout import INDEX as INDEX_NAME
from corpusforge.layout import OutputLayout, temporary


def shard_files(info: dict[str, Any]) -> list[str]:
    """The index paths of a shard's files: the main one, then its sidecars (Megatron ``.idx``)."""
    return [info["path"], *(s["path"] for s in info.get("sidecars", []))]


class ShardStore:
    """Shard files by their index entry: in place for a local output, through a bounded cache for a URL."""

    def __init__(self, root: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None,
                 cache_limit: int | None = None, prefetch: int = 2):
        root = str(root)
        if root.startswith("file://"):
            root = root[len("file://"):]
        self.url = root if "://" in root else None
        self.root = Path(root) if self.url is None else None
        self.cache_limit, self.prefetch = cache_limit, prefetch
        self.cache_dir: Path | None = None
        if self.url is not None:
            import fsspec

            from corpusforge.remote import mirror_dir

            self._fs, self.remote_root = fsspec.core.url_to_fs(self.url)
            self.cache_dir = Path(cache_dir) if cache_dir else OutputLayout(mirror_dir(self.url)).loader_cache
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self.pinned: set[str] = set()  # index paths of the files (sidecars too) this process has open: never evicted
        self.queued: set[str] = set()  # index paths waiting for the prefetch thread
        self.fetched_bytes = 0  # bytes downloaded by this process (for tests and benchmarks)
        self._lock, self._fetch_lock = threading.Lock(), threading.Lock()
        self._queue: queue.Queue[dict[str, Any] | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A DataLoader worker gets its own filesystem client, locks, queue and fetch thread.
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_fetch_lock", "_queue", "_fs")}
        state["pinned"], state["queued"], state["_pid"] = set(), set(), -1
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock, self._fetch_lock, self._queue = threading.Lock(), threading.Lock(), None

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, made anew in a forked or spawned worker (clients are not fork-safe)."""
        if self._pid != os.getpid():
            import fsspec

            self._fs = fsspec.core.url_to_fs(self.url)[0]
            self._lock, self._fetch_lock, self._queue = threading.Lock(), threading.Lock(), None
            self.pinned, self.queued, self._pid = set(), set(), os.getpid()
        return self._fs

    def read_index(self) -> dict[str, Any]:
        if self.root is not None:
            from corpusforge.state import read_json

            return read_json(OutputLayout(self.root).index)
        where = f"{self.url.rstrip('/')}/{INDEX_NAME}"
        try:
            return orjson.loads(self.fs.cat_file(f"{self.remote_root.rstrip('/')}/{INDEX_NAME}"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{where}: no shard index (is this a corpusforge output?)") from None
        except Exception as exc:
            from corpusforge.remote import access_error

            err = access_error(exc, where)
            if err is not None:
                raise err from exc
            raise

    def describe(self) -> str:
        return str(self.root) if self.root is not None else str(self.url)

    def path(self, info: dict[str, Any]) -> Path:
        """The local main file of shard ``info``, fetched (with its sidecars) if it is not cached."""
        if self.root is not None:
            return self.root / info["path"]
        self.fs  # noqa: B018  (a worker's own client and locks, before they are used)
        with self._lock:
            self.pinned.update(shard_files(info))
        self._fetch(info)
        local = self.cache_dir / info["path"]  # type: ignore[operator]
        os.utime(local)  # least recently used is evicted first
        return local

    def release(self, info: dict[str, Any]) -> None:
        """Shard ``info`` is no longer open here: the cache may evict it."""
        with self._lock:
            self.pinned.difference_update(shard_files(info))

    def ahead(self, infos: list[dict[str, Any]]) -> None:
        """Fetch these shards in the background, in order, while there is room for them."""
        if self.root is None and self.prefetch > 0:
            self.fs  # noqa: B018
            if self._queue is None:
                self._queue = queue.Queue()
                threading.Thread(target=self._prefetcher, daemon=True).start()
            for info in infos[: self.prefetch]:
                with self._lock:
                    if info["path"] in self.pinned or info["path"] in self.queued:
                        continue
                    self.queued.add(info["path"])
                self._queue.put(info)

    def _prefetcher(self) -> None:
        assert self._queue is not None
        while (info := self._queue.get()) is not None:
            try:
                self._fetch(info, room_only=True)
            except Exception:  # the reader fetches it again in the foreground and raises there
                pass
            finally:
                with self._lock:
                    self.queued.discard(info["path"])

    def _cached(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.cache_dir.rglob("shard_*"):  # type: ignore[union-attr]
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out.append((st.st_mtime, st.st_size, p))
        return sorted(out)

    def _make_room(self, need: int, keep: set[Path], room_only: bool) -> bool:
        """Evict least recently used shards not in ``keep`` until ``need`` more bytes fit the limit."""
        if self.cache_limit is None:
            return True
        cached = self._cached()
        used = sum(size for _, size, _ in cached)
        for _, size, p in cached:
            if used + need <= self.cache_limit:
                break
            if p in keep or room_only:
                continue
            p.unlink(missing_ok=True)
            used -= size
        return used + need <= self.cache_limit

    def _fetch(self, info: dict[str, Any], room_only: bool = False) -> None:
        with self._fetch_lock:  # one download at a time, so room made is room kept
            self._fetch_locked(info, room_only)

    def _fetch_locked(self, info: dict[str, Any], room_only: bool) -> None:
        names = shard_files(info)
        local = [self.cache_dir / n for n in names]  # type: ignore[operator]
        sizes = [info.get("bytes")] if len(names) == 1 else [None] * len(names)
        if all(p.exists() for p in local):
            return
        need = int(info.get("bytes") or 0)
        with self._lock:
            keep = {self.cache_dir / pin for pin in self.pinned}  # type: ignore[operator]
        if not self._make_room(need, keep, room_only):
            if room_only:
                return  # no room ahead of time: the reader fetches it when it gets there
            raise OSError(f"{self.url}: cache_limit {self.cache_limit} bytes in {self.cache_dir} cannot hold "
                          f"{info['path']} ({need} bytes) beside the shards in use; raise cache_limit")
        for name, dest, size in zip(names, local, sizes, strict=True):
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary(dest, f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}")
            remote = f"{self.remote_root.rstrip('/')}/{name}"
            try:
                self.fs.get_file(remote, str(tmp))
                got = tmp.stat().st_size
                if size is not None and got != size:
                    raise OSError(f"{self.url}/{name}: fetched {got} bytes, the index says {size}")
                os.replace(tmp, dest)
            except FileNotFoundError:
                raise FileNotFoundError(f"{self.url.rstrip('/')}/{name}: listed in the index but not in the store") from None
            finally:
                tmp.unlink(missing_ok=True)
            self.fetched_bytes += got
