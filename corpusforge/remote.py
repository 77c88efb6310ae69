"""Outputs on an fsspec URL (``s3://``, ``gs://``, ``az://``, ...): tasks write a local mirror, which
is published to the store object by object.

Every stage writes its files as it does locally, into a mirror folder (the same path on every
machine: ``$CORPUSFORGE_MIRROR_DIR``, or ``corpusforge-mirror-<uid>`` in the system temp folder,
then a hash of the URL). The mirror's files are uploaded with this user's credentials, so its
folders must be this user's alone: created 0700 and checked on every use (a real folder owned by
this user, not writable by others), else the run stops naming the folder. Before a task runs, the
mirror is brought up to date from the store (files missing locally or of another size are
downloaded); after it, what the task added or changed is uploaded, each file in one ``put`` (a
single PUT, or a multipart upload that appears only when complete), and its completion record
last, so a record in the store always follows the data it describes. Each upload's size and
sha256 are first appended to the mirror's upload ledger (``.corpusforge-uploads.jsonl``). A run
on another machine, or after the mirror was deleted, resumes from the store; a run first uploads
what its mirror holds and the store lacks when the ledger has that very file, so uploads cut
short by a failed run are completed, while a file no run here recorded (one planted in the
mirror, or a task's output left before its upload began) is never uploaded: it is removed from
the mirror, with a warning naming it, and the store's copy or the task that writes it replaces it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from corpusforge import layout as layout_names
from corpusforge.errors import AccessError, CorpusforgeError
from corpusforge.layout import OutputLayout, record_name, temporary
from corpusforge.state import file_sha256, is_temporary

STATE = f"{layout_names.STATE}/"  # the prefix of the keys of records, marker and lock
LEDGER = layout_names.UPLOAD_LEDGER
MIRROR_ENV = "CORPUSFORGE_MIRROR_DIR"
log = logging.getLogger(__name__)


# The fsspec filesystem packages corpusforge's extras install, by the name fsspec's import error gives.
FS_PACKAGE_EXTRA = {"s3fs": "remote", "gcsfs": "cloud", "adlfs": "cloud", "huggingface_hub": "remote"}
_BUCKET_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"}
_HF_LOCAL_COPY = ("point `path:` at a local copy instead (made where the Hub is reachable, e.g. `hf download "
                  "REPO --repo-type dataset --local-dir DIR`), or use an hf_dataset source with `path: DIR`")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, then its causes and contexts, each once."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is not None and all(e is not o for o in out):
            out.append(e)
            todo += [e.__cause__, e.__context__]
    return out


def _host(url: str) -> str:
    """``scheme://host:port`` of a URL: where a connection went, without its path or query."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def access_reason(exc: BaseException) -> str | None:
    """Why a store, endpoint or hub could not be used, in one clause, when ``exc`` (or what caused
    it) is one of the failures a user fixes outside the recipe: no credentials, a connection refused
    or a name not resolved, a missing bucket, the Hub offline, a filesystem package not installed.
    None for anything else, which stays the error it is."""
    for e in _chain(exc):
        name, module = type(e).__name__, type(e).__module__ or ""
        text = str(e)
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            return ("no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
                    "in the environment of the run)")
        if name == "EndpointConnectionError":
            url = getattr(e, "kwargs", {}).get("endpoint_url", "")
            return f"cannot connect to the endpoint {_host(url)} (check AWS_ENDPOINT_URL / endpoint_url)"
        if name == "OfflineModeIsEnabled" or (module.startswith("huggingface_hub") and isinstance(e, ConnectionError)):
            return f"cannot reach the HuggingFace Hub (offline: HF_HUB_OFFLINE is set); {_HF_LOCAL_COPY}"
        if isinstance(e, FileNotFoundError) and "bucket does not exist" in text.lower():
            return "the bucket does not exist"
        if name == "ClientError" and "NoSuchBucket" in text:
            return "the bucket does not exist"
        if isinstance(e, ImportError) and (pkg := next((p for p in FS_PACKAGE_EXTRA if p in text), None)):
            return (f"the filesystem package {pkg} is not installed: pip install "
                    f"'corpusforge[{FS_PACKAGE_EXTRA[pkg]}]'")
        if name == "ClientConnectorError":  # aiohttp (http(s):// files)
            return f"cannot connect to {e.host}:{e.port} ({_short_os_reason(e)})"
        if name == "ConnectError" or isinstance(e, ConnectionRefusedError):  # httpx (the Hub), or a socket
            url = _request_url(e)
            if "huggingface.co" in url:
                return f"cannot reach the HuggingFace Hub at {_host(url)} ({_short_os_reason(e)}); {_HF_LOCAL_COPY}"
            return f"cannot connect to {_host(url) if url else 'the endpoint'} ({_short_os_reason(e)})"
    return None


def _request_url(e: BaseException) -> str:
    """The URL of the request an httpx error belongs to, or ``""`` (httpx raises when it has none)."""
    try:
        return str(e.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""


def _short_os_reason(e: BaseException) -> str:
    """The OS reason of a connection failure (``Connection refused``), else its message."""
    for x in _chain(e):
        if isinstance(x, OSError) and x.strerror:
            return x.strerror
    return str(e) or type(e).__name__


def access_error(exc: BaseException, where: str) -> AccessError | None:
    """``AccessError("WHERE: reason")`` when ``access_reason`` knows ``exc``, else None."""
    from corpusforge.redact_urls import redact_text

    why = access_reason(exc)
    return AccessError(redact_text(f"{where}: {why}")) if why else None


def is_url(path: str | os.PathLike[str] | None) -> bool:
    """True for ``scheme://...`` outputs other than local ``file://`` ones."""
    s = str(path or "")
    return "://" in s and not s.startswith("file://")


def mirror_dir(url: str) -> Path:
    """Where the mirror of ``url`` lives on this machine (the same path on every machine by default),
    created private and checked (see ``private_dir``) on every call."""
    override = os.environ.get(MIRROR_ENV)
    if override:
        root = private_dir(Path(override).expanduser(), f"${MIRROR_ENV}", chosen=True)
    else:
        root = private_dir(Path(tempfile.gettempdir()) / f"corpusforge-mirror-{os.geteuid()}", "mirror folder")
    return private_dir(root / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16], "mirror folder")


def private_dir(path: Path, what: str, chosen: bool = False) -> Path:
    """``path``, created with mode 0700 if missing, after checking that no other user can put files
    in it: a folder (not a symlink) owned by this uid with mode 700, in a folder that no other user
    can rename it out of (sticky, as the temp folder is, or owned by this user or root and not
    writable by others). A ``chosen`` folder (``$CORPUSFORGE_MIRROR_DIR``) may be a symlink, readable
    by others and anywhere, but must be this user's and not writable by others. Raises
    CorpusforgeError naming the folder and why."""
    fix = f"; remove it or set ${MIRROR_ENV} to a folder of your own"
    if not chosen:
        try:
            up = os.stat(path.parent)
        except FileNotFoundError:
            raise CorpusforgeError(f"{what} {path}: the folder {path.parent} does not exist{fix}") from None
        others_may_rename = up.st_uid not in (0, os.geteuid()) or up.st_mode & 0o022
        if others_may_rename and not up.st_mode & stat.S_ISVTX:
            raise CorpusforgeError(f"{what} {path}: the folder holding it, {path.parent}, is writable by other "
                                   f"users (uid {up.st_uid}, mode {stat.S_IMODE(up.st_mode):o}): refused{fix}")
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CorpusforgeError(f"{what} {path}: cannot create it ({exc.strerror or exc}){fix}") from None
    st = os.stat(path) if chosen else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise CorpusforgeError(f"{what} {path} is a symlink, refused (another user may have made it){fix}")
    if not stat.S_ISDIR(st.st_mode):
        raise CorpusforgeError(f"{what} {path} is not a folder{fix}")
    if st.st_uid != os.geteuid():
        raise CorpusforgeError(f"{what} {path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}): "
                               f"refused, its files would be uploaded with your credentials{fix}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise CorpusforgeError(f"{what} {path} is writable by other users (mode {mode:o}): refused, files "
                               f"planted there would be uploaded with your credentials{fix}")
    if mode & 0o077 and not chosen:
        raise CorpusforgeError(f"{what} {path} has mode {mode:o}, not 700: refused{fix}")
    return path


def _modified(info: dict[str, Any]) -> float | None:
    """An object's modification time (epoch seconds) from an fsspec listing entry, if it has one."""
    for key in ("LastModified", "mtime", "updated", "last_modified"):
        v = info.get(key)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str) and v:
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _not_output(rel: str) -> bool:
    """Mirror bookkeeping, never an output file: the upload ledger (and a store object of its name)."""
    return rel == LEDGER


class RemoteOutput:
    """The output ``url`` and its local mirror ``local``; ``pull`` and ``push`` keep them in step."""

    def __init__(self, url: str, local: str | os.PathLike[str] | None = None):
        from fsspec.core import url_to_fs

        self.url = url.rstrip("/")
        try:
            self.fs, self.root = url_to_fs(self.url)
        except ImportError as exc:
            raise access_error(exc, f"output {self.url}") or CorpusforgeError(
                f"output {self.url}: no filesystem for this URL ({exc})") from None
        except ValueError as exc:
            raise CorpusforgeError(f"output {self.url}: no filesystem for this URL ({exc})") from None
        self.root = self.root.rstrip("/")
        if local is None:
            self.local = mirror_dir(self.url)
        else:
            # A task's mirror on a worker, or a download folder: as private as the default one.
            self.local = Path(local)
            if not self.local.parent.exists():
                self.local.parent.parent.mkdir(parents=True, exist_ok=True)
                private_dir(self.local.parent, "mirror folder")
            private_dir(self.local, "mirror folder")

    def remote_files(self) -> dict[str, tuple[int, float | None]]:
        """Every object under the output in the store: relative path -> (size, modified or None)."""
        # Listings are cached per filesystem instance, which fsspec shares in a process: a worker
        # must see what other machines wrote since its last task.
        self.fs.invalidate_cache(self.root)
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            self._check_bucket()
            return {}
        prefix = self.root + "/"
        return {p[len(prefix):]: (int(info.get("size") or 0), _modified(info)) for p, info in found.items()
                if p.startswith(prefix) and info.get("type", "file") != "directory"}

    def _check_bucket(self) -> None:
        """Raise ``AccessError`` when the bucket (container) of an object-store output does not exist:
        the run would fail at its first upload, after writing its mirror."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        bucket = self.root.split("/", 1)[0]
        if set(protocols) & _BUCKET_STORES and bucket and not self.fs.exists(bucket):
            raise AccessError(f"output {self.url}: the bucket {bucket!r} does not exist (create it, or "
                              "name another with --output / output.path)")

    def pull(self, skip: tuple[str, ...] = (), files: dict[str, tuple[int, float | None]] | None = None) -> int:
        """Download what the mirror lacks, or holds at another size and older than the store's;
        returns how many files came. A newer local file is a task's output not yet uploaded (by a
        concurrent task on this machine): it is never replaced by the store's older one. ``files``:
        a ``remote_files()`` listing just taken, so the store is not listed twice."""
        n = 0
        for rel, (size, modified) in sorted((self.remote_files() if files is None else files).items()):
            if rel.startswith(skip) or _not_output(rel):
                continue
            dst = self.local / rel
            try:
                st = dst.stat()
                if st.st_size == size or (modified is not None and st.st_mtime >= modified):
                    continue
            except FileNotFoundError:
                pass
            self._download(rel)
            n += 1
        return n

    def _download(self, rel: str) -> None:
        dst = self.local / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary(dst)
        try:
            self.fs.get_file(f"{self.root}/{rel}", str(tmp))
            os.replace(tmp, dst)
        finally:
            if tmp.exists():
                tmp.unlink()

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Relative path -> (size, mtime_ns) of every finished file in the mirror."""
        out: dict[str, tuple[int, int]] = {}
        if not self.local.exists():
            return out
        for dirpath, _, files in os.walk(self.local):
            for f in files:
                if is_temporary(f) or (f == LEDGER and dirpath == str(self.local)):
                    continue
                p = os.path.join(dirpath, f)
                try:
                    st = os.stat(p)
                except FileNotFoundError:
                    continue  # replaced or removed by a concurrent task meanwhile
                out[os.path.relpath(p, self.local).replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns)
        return out

    def push(self, before: dict[str, tuple[int, int]], records: set[str] | None = None) -> int:
        """Upload what changed since ``before`` and delete what went; completion records last.

        ``records``: the only ``_state/`` files to upload (a task's own record), so a task never
        publishes the record of a concurrent task on this machine before that task's data.
        """
        after = self.snapshot()
        changed = sorted(rel for rel, sig in after.items() if before.get(rel) != sig)
        data = [r for r in changed if not r.startswith(STATE)]
        state = [r for r in changed if r.startswith(STATE) and (records is None or r in records)]
        n = 0
        for rel in data + state:
            try:
                self._record(rel)
                self.fs.put_file(str(self.local / rel), f"{self.root}/{rel}")
                n += 1
            except FileNotFoundError:
                if (self.local / rel).exists():
                    raise
        for rel in sorted(set(before) - set(after)):
            try:
                self.fs.rm_file(f"{self.root}/{rel}")
            except FileNotFoundError:
                pass
        return n

    def _record(self, rel: str) -> None:
        """Append ``rel``'s size and sha256 to the upload ledger, before it is uploaded: what a later
        ``push_missing`` may complete. One ``write`` per line, so concurrent tasks never interleave."""
        path = self.local / rel
        line = orjson.dumps({"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)}) + b"\n"
        fd = os.open(OutputLayout(self.local).upload_ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def _ledger(self) -> dict[str, set[tuple[int, str]]]:
        """Relative path -> every (size, sha256) the upload ledger holds for it."""
        out: dict[str, set[tuple[int, str]]] = {}
        try:
            fd = os.open(OutputLayout(self.local).upload_ledger, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return out
        with os.fdopen(fd, "rb") as fh:
            for line in fh:
                try:
                    rec = orjson.loads(line)
                    out.setdefault(rec["path"], set()).add((int(rec["size"]), str(rec["sha256"])))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a line cut short by a crash: that upload was never recorded
        return out

    def recorded(self, rel: str, ledger: dict[str, set[tuple[int, str]]] | None = None) -> bool:
        """Whether the mirror's ``rel`` is, byte for byte, a file a run here recorded for upload."""
        entries = (self._ledger() if ledger is None else ledger).get(rel, set())
        path = self.local / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        return any(s == size for s, _ in entries) and (size, file_sha256(path)) in entries

    def push_missing(self) -> int:
        """Upload what the mirror has and the store lacks (or holds at another size), records last:
        repairs a store whose uploads an earlier, failed run on this machine left unfinished. Only
        files the upload ledger holds with the same sha256 go; any other such file is removed from
        the mirror with a warning (and the store's copy, if any, downloaded in its place), so a
        planted file never reaches the store and a task whose record never went up runs again."""
        there = self.remote_files()
        here = self.snapshot()
        ledger = self._ledger()
        missing = sorted(rel for rel, (size, _) in here.items() if there.get(rel, (None,))[0] != size)
        backed = [rel for rel in missing if self.recorded(rel, ledger)]
        for rel in sorted(set(missing) - set(backed)):
            log.warning("%s: mirror file %s was not written by a run on this machine (no upload record with its "
                        "checksum): not uploaded, removed from the mirror", self.url, self.local / rel)
            (self.local / rel).unlink(missing_ok=True)
            if rel in there:
                self._download(rel)
        for rel in [r for r in backed if not r.startswith(STATE)] + [r for r in backed if r.startswith(STATE)]:
            self.fs.put_file(str(self.local / rel), f"{self.root}/{rel}")
        return len(backed)

    def clear(self) -> None:
        """Delete the output in the store and its mirror (``--fresh``): only a corpusforge output
        (its marker in the store) holding nothing corpusforge did not write, else ``OutputRefused``."""
        from corpusforge.state import OutputRefused, deletion_refusal

        files = self.remote_files()
        names = {rel.split("/", 1)[0] for rel in files}
        in_state = {rel[len(STATE):].split("/", 1)[0] for rel in files if rel.startswith(STATE)}

        def read_text(rel: str) -> str | None:
            return self.fs.cat_file(f"{self.root}/{rel}").decode("utf-8", "replace") if rel in files else None

        why = deletion_refusal(self.url, names, in_state, read_text)
        if why:
            raise OutputRefused(why)
        if files:
            self.fs.rm(self.root, recursive=True)
        if self.local.exists():
            shutil.rmtree(self.local)
        private_dir(self.local, "mirror folder")  # made again as private as before: the run writes into it


def run_synced_task(payload: dict[str, Any]) -> dict[str, Any]:
    """``pipeline.run_task`` on the mirror of ``payload['remote']``: pull, run, push."""
    from corpusforge.pipeline import run_task

    out = RemoteOutput(payload["remote"], payload["output"])
    stage = payload["stage"]
    if not (stage["kind"] == "curate" and stage["segment"] == 0):
        out.pull()  # the first curate stage reads only its sources: no listing of the store for it
    before = out.snapshot()
    result = run_task(payload)
    out.push(before, records={record_name(stage["name"], payload["task"])})
    return result


def local_copy(url: str, dest: str | os.PathLike[str],
               skip: tuple[str, ...] = (f"{layout_names.WORK}/", f"{layout_names.STATE}/")) -> Path:
    """Download the output at ``url`` (without its work files) into ``dest``, for validate/inspect."""
    out = RemoteOutput(url, dest)
    files = out.remote_files()
    if not files:
        raise CorpusforgeError(f"{url}: no such output (nothing stored under it)")
    out.pull(skip=skip, files=files)
    return out.local
