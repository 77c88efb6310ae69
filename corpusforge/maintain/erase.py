"""Right to erasure: remove documents from a built output, found by id, source or a regex over their text.

Lineage says which shard rows hold a document; only those shards are rewritten (``shards/edit.py``),
then their lineage tables, the kept and staged documents, audit logs and quarantine
(``maintain/scrub.py``). Every new file is first written under a temporary name, then a journal
(``_state/erase/journal.json``) lists the renames and the new index; applying it renames the files,
writes ``shard_index.json`` last among the shard files, then ``stats.json``, ``version.json`` and the
erasure's record in ``audit/erasures.jsonl``. A crash before the journal exists leaves the output
as it was; after, the next ``erase`` finishes the journal first.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpusforge import layout as layout_names
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout, is_journal_temporary
from corpusforge.maintain import scrub
from corpusforge.maintain.journal import Journal, apply_journal
from corpusforge.maintain.version import write_version
from corpusforge.observe.lineage import SCHEMA, read_lineage
from corpusforge.shards.edit import cut_pieces, read_input_ids, shard_files, shard_metadata, write_shard_files
from corpusforge.state import atomic_write_bytes, atomic_write_json, file_sha256, read_json
from corpusforge.tokenize.special import special_of_index

ERASURES = Path(layout_names.ERASURES)
JOURNAL = Path(layout_names.ERASE_JOURNAL)


@dataclass(frozen=True)
class Selector:
    """Which documents to erase: ids, source names, or a Python regex searched in their text."""

    doc_ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    match: str | None = None

    def __post_init__(self) -> None:
        if sum(map(bool, (self.doc_ids, self.sources, self.match))) != 1:
            raise CorpusforgeError("give exactly one selector: doc ids, source names or a regex")
        if self.match:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise CorpusforgeError(f"--match {self.match!r}: not a valid regular expression ({exc})") from None

    def record(self) -> dict[str, Any]:
        """The selector as the audit log keeps it: a regex only by its sha256, since it may quote the erased text."""
        if self.doc_ids:
            return {"doc_ids": sorted(self.doc_ids)}
        if self.sources:
            return {"sources": sorted(self.sources)}
        return {"match_sha256": hashlib.sha256(str(self.match).encode()).hexdigest()}


@dataclass
class ErasurePlan:
    """What an erasure removes: the documents (with where they came from) and every file it touches."""

    documents: dict[str, dict[str, Any]]  # doc_id -> source_name, source_uri, offset, tokens, shards
    pieces: pa.Table  # the lineage lines of the erased documents
    text_files: list[Path] = field(default_factory=list)
    audit_files: list[Path] = field(default_factory=list)
    quarantine: dict[Path, int] = field(default_factory=dict)
    unknown_ids: list[str] = field(default_factory=list)
    already_erased: list[str] = field(default_factory=list)

    @property
    def shards(self) -> list[str]:
        return sorted(set(self.pieces["shard"].to_pylist()))

    @property
    def tokens(self) -> int:
        return int(pc.sum(pc.subtract(self.pieces["token_end"], self.pieces["token_start"])).as_py() or 0)

    @property
    def empty(self) -> bool:
        return not self.documents and not self.quarantine


def erased_ids(output: Path) -> frozenset[str]:
    """Every document id an erasure removed from ``output``; a later run leaves them out."""
    path = OutputLayout(output).erasures
    if not path.is_file():
        return frozenset()
    return frozenset(i for line in path.read_bytes().splitlines() if line for i in orjson.loads(line)["documents"])


def regenerate_derived(output: Path) -> None:
    """Rebuild the files derived from the shards and index: ``version.json``, the data card and report."""
    from corpusforge.observe.card import write_card

    write_version(output)
    write_card(output)


def _load_index(output: Path) -> dict[str, Any]:
    path = OutputLayout(output).index
    if not path.is_file():
        from corpusforge.staging import missing_shard_index

        raise CorpusforgeError(missing_shard_index(output))
    return read_json(path)


def _decoder(output: Path, index: dict[str, Any]) -> Any:
    """``ids -> text`` with the output's own tokenizer (special tokens skipped)."""
    path = output / index["tokenizer"]["path"]
    if path.suffix == ".model":
        from corpusforge.tokenize.spm import SentencePieceEncoder

        sp = SentencePieceEncoder.from_file(path).sp
        specials = set(special_of_index(index).tokens.values())
        return lambda ids: sp.decode([int(i) for i in ids if int(i) not in specials])
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    return lambda ids: tok.decode([int(i) for i in ids], skip_special_tokens=True)


def _decoded_texts(output: Path, index: dict[str, Any], pieces: pa.Table) -> dict[str, str]:
    """Each document's text decoded from its shard spans: the piece with BOS first, the one with EOS
    last, the others in shard and row order (exact unless a shuffled document spans four rows or more)."""
    length, decode = index["sequence_length"], _decoder(output, index)
    special = special_of_index(index)
    position = {s["path"]: k for k, s in enumerate(index["shards"])}
    parts: dict[str, list[tuple[int, int, int, np.ndarray]]] = {}
    for shard in sorted(set(pieces["shard"].to_pylist()), key=position.__getitem__):
        ids = read_input_ids(output / shard, length, special)
        for p in pieces.filter(pc.equal(pieces["shard"], shard)).to_pylist():
            span = ids[p["row"], p["token_start"] : p["token_end"]]
            rank = 0 if special.bos is not None and span[0] == special.bos else 2 if span[-1] == special.eos else 1
            parts.setdefault(p["doc_id"], []).append((rank, position[shard], p["row"], span))
    return {d: decode(np.concatenate([s for *_, s in sorted(ps, key=lambda x: x[:3])])) for d, ps in parts.items()}


def plan_erasure(output: Path, selector: Selector) -> ErasurePlan:
    """Find what ``selector`` erases in ``output`` without changing anything."""
    output = Path(output)
    index = _load_index(output)
    lineage = read_lineage(output) if index["shards"] else SCHEMA.empty_table()  # empty: all erased
    lineage_ids = set(lineage["doc_id"].to_pylist())
    regex = re.compile(selector.match) if selector.match else None
    already = erased_ids(output)
    wanted_ids = set(selector.doc_ids) - already
    wanted_sources = set(selector.sources)
    chosen: set[str] = set()
    about: dict[str, dict[str, Any]] = {}
    has_text: set[str] = set()
    files = scrub.text_files(output)
    hits: dict[Path, bool] = {}
    columns = ("id", "source", "offset", "source_name") + (("text",) if regex else ())
    for path in files:
        for batch in scrub.iter_records(path, columns):
            for i, doc_id in enumerate(batch["id"]):
                has_text.add(doc_id)
                if doc_id in already:
                    continue
                if doc_id in chosen:
                    hits[path] = True
                    continue
                if (doc_id in wanted_ids or batch["source_name"][i] in wanted_sources
                        or (regex is not None and batch["text"][i] and regex.search(batch["text"][i]))):
                    chosen.add(doc_id)
                    hits[path] = True
                    about.setdefault(doc_id, {"source_name": batch["source_name"][i], "source_uri": batch["source"][i],
                                              "offset": batch["offset"][i]})
    if selector.doc_ids:
        chosen |= wanted_ids & lineage_ids
    if selector.sources:
        chosen |= set(lineage.filter(pc.is_in(lineage["source_name"], pa.array(sorted(wanted_sources))))["doc_id"]
                      .to_pylist())
    if regex is not None:
        blind = sorted(lineage_ids - has_text - chosen)
        if blind:
            pieces = lineage.filter(pc.is_in(lineage["doc_id"], pa.array(blind, pa.string())))
            chosen |= {d for d, text in _decoded_texts(output, index, pieces).items() if regex.search(text)}
    # a text file holds a chosen document found through another file or the lineage: scrub it too
    for path in files:
        if path not in hits and any(set(b["id"]) & chosen for b in scrub.iter_records(path, ("id",))):
            hits[path] = True
    pieces = lineage.filter(pc.is_in(lineage["doc_id"], pa.array(sorted(chosen), pa.string())))
    for p in pieces.to_pylist():
        info = about.setdefault(p["doc_id"], {"source_name": p["source_name"], "source_uri": p["source_uri"],
                                              "offset": p["offset"]})
        info["tokens"] = info.get("tokens", 0) + p["token_end"] - p["token_start"]
        info.setdefault("shards", [])
        if p["shard"] not in info["shards"]:
            info["shards"].append(p["shard"])
    for doc_id in chosen:
        about[doc_id].setdefault("tokens", 0)
        about[doc_id].setdefault("shards", [])
    uris = {a["source_uri"] for a in about.values()} if selector.sources else set()
    pick = _quarantine_picker(regex, uris)
    quarantine = {p: n for p in scrub.quarantine_files(output) if (n := scrub.quarantine_hits(p, pick))} if (
        regex or uris) else {}
    return ErasurePlan(
        documents=dict(sorted(about.items())), pieces=pieces,
        text_files=[p for p in files if p in hits],
        audit_files=[p for p in scrub.audit_logs(output) if chosen and scrub.audit_log_mentions(p, chosen)],
        quarantine=quarantine, unknown_ids=sorted(wanted_ids - chosen),
        already_erased=sorted(set(selector.doc_ids) & already))


def _quarantine_picker(regex: re.Pattern[str] | None, uris: set[str]) -> Any:
    """Quarantined records have no document id: pick them by the regex over ``raw``, or by an erased source's file."""
    def pick(rec: dict[str, Any]) -> bool:
        if regex is not None and regex.search(rec.get("raw") or ""):
            return True
        return any(rec.get("location", "").startswith(u) for u in uris)
    return pick


def finish_journal(output: Path) -> dict[str, Any]:
    """Apply a written journal (again, after a crash, is safe); returns the erasure's audit record."""
    layout = OutputLayout(output)
    j = apply_journal(output, JOURNAL)
    atomic_write_json(layout.index, j["index"])
    if j["stats"] is not None:
        atomic_write_json(layout.stats, j["stats"])
    regenerate_derived(output)
    record = {**j["record"], "version_after": read_json(layout.version)["version"]}
    log = layout.erasures
    old = log.read_bytes() if log.is_file() else b""
    if not any(line and orjson.loads(line)["erasure"] == record["erasure"] for line in old.splitlines()):
        atomic_write_bytes(log, old + orjson.dumps(record) + b"\n")
    layout.erase_journal.unlink()
    return record


def _remove_unjournaled_temporaries(output: Path) -> None:
    """Files an erasure cut off before its journal left under temporary names: never part of the output."""
    for dirpath, _, files in os.walk(output):
        for f in files:
            if is_journal_temporary(f):
                os.unlink(os.path.join(dirpath, f))


def _lineage_path(output: Path, shard: str) -> Path:
    split, name = shard.split("/", 1)
    return OutputLayout(output).lineage_table(split, name)



def apply_erasure(output: Path, plan: ErasurePlan, selector: Selector) -> dict[str, Any]:
    """Carry out ``plan`` on ``output``; returns the audit record written to ``audit/erasures.jsonl``."""
    output = Path(output)
    index = _load_index(output)
    journal = Journal(output, JOURNAL)
    chosen = pa.array(sorted(plan.documents), pa.string())
    changed, removed, rows_removed = [], [], 0
    tokens_split: Counter[str] = Counter()
    tokens_source: Counter[str] = Counter()
    copies_split: Counter[str] = Counter()
    copies_source: Counter[str] = Counter()
    try:
        entries = []
        for entry in index["shards"]:
            if entry["path"] not in plan.shards:
                entries.append(entry)
                continue
            main = output / entry["path"]
            lineage = pq.read_table(_lineage_path(output, entry["path"]))
            special = special_of_index(index)
            edit = cut_pieces(read_input_ids(main, index["sequence_length"], special), lineage,
                              pc.is_in(lineage["doc_id"], chosen).to_numpy(zero_copy_only=False), special)
            rows_removed += edit.rows_removed
            tokens_split[entry["split"]] += edit.tokens_removed
            tokens_source.update(edit.tokens_by_source)
            copies_split[entry["split"]] += sum(edit.copies_removed.values())
            copies_source.update(edit.copies_removed)
            files = {s: output / p for s, p in shard_files(index, entry["path"]).items()}
            if not len(edit.input_ids):
                for f in files.values():
                    journal.delete(f)
                journal.delete(_lineage_path(output, entry["path"]))
                removed.append(entry["path"])
                continue
            temps = {s: journal.temp(f) for s, f in files.items()}
            write_shard_files(edit.input_ids, main, temps, index, shard_metadata(main, entry["split"], index))
            tmp_lineage = journal.temp(_lineage_path(output, entry["path"]))
            pq.write_table(edit.lineage.cast(SCHEMA), tmp_lineage, compression="zstd")
            paths = list(temps.values())
            new = {**entry, "samples": int(len(edit.input_ids)), "tokens": int(np.count_nonzero(edit.input_ids != special.pad)),
                   "bytes": sum(p.stat().st_size for p in paths), "sha256": file_sha256(paths[0])}
            if len(paths) > 1:
                new["sidecars"] = [{"path": files[s].relative_to(output).as_posix(), "sha256": file_sha256(temps[s])}
                                   for s in list(files)[1:]]
            entries.append(new)
            changed.append(entry["path"])
        scrubbed = []
        for path in plan.text_files:
            scrub.rewrite_documents(path, set(plan.documents), journal.temp(path), scrub.is_staging(output, path))
            scrubbed.append(path)
        for path in plan.audit_files:
            scrub.rewrite_audit_log(path, set(plan.documents), journal.temp(path))
            scrubbed.append(path)
        pick = _quarantine_picker(re.compile(selector.match) if selector.match else None,
                                  {a["source_uri"] for a in plan.documents.values()} if selector.sources else set())
        for path in plan.quarantine:
            scrub.rewrite_quarantine(path, pick, journal.temp(path))
            scrubbed.append(path)
        if plan.shards:
            for path in OutputLayout(output).shard_intermediates():
                journal.delete(path)
        new_index = _reindex(index, entries, tokens_source, copies_source)
        stats = _restat(output, new_index, tokens_split, copies_split, tokens_source, copies_source)
        version = OutputLayout(output).version
        record = {
            "erasure": journal.token + uuid.uuid4().hex[:8],
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "selector": selector.record(),
            "documents": sorted(plan.documents),
            "documents_in_shards": sum(1 for d in plan.documents.values() if d["shards"]),
            "shards_changed": changed, "shards_removed": removed, "rows_removed": rows_removed,
            "tokens_removed": sum(tokens_split.values()), "tokens_removed_by_split": dict(sorted(tokens_split.items())),
            "quarantine_records_removed": sum(plan.quarantine.values()),
            "files_scrubbed": [p.relative_to(output).as_posix() for p in scrubbed],
            "version_before": read_json(version)["version"] if version.is_file() else None,
        }
    except BaseException:
        journal.discard()
        raise
    journal.commit({"index": new_index, "stats": stats, "record": record})
    return finish_journal(output)


def _less(by_source: dict[str, dict[str, Any]], tokens: Counter[str], copies: Counter[str]) -> dict[str, dict[str, Any]]:
    """A ``tokens_by_source`` table (tokens, documents, share per source) without the erased part."""
    out = {k: {**v, "tokens": v["tokens"] - tokens.get(k, 0), "documents": v["documents"] - copies.get(k, 0)}
           for k, v in by_source.items()}
    total = sum(v["tokens"] for v in out.values())
    for v in out.values():
        v["share"] = round(v["tokens"] / total, 6) if total else 0.0
    return out


def _reindex(index: dict[str, Any], entries: list[dict[str, Any]], tokens: Counter[str], copies: Counter[str]
             ) -> dict[str, Any]:
    """``index`` with ``entries`` as its shards and its totals summed again, as ``finalize_shards`` sums them."""
    splits = {}
    for split in index["splits"]:
        these = [s for s in entries if s["split"] == split]
        splits[split] = {"shards": len(these), **{k: sum(s[k] for s in these) for k in ("samples", "tokens", "bytes")}}
    out = {**index, "shards": entries, "splits": splits,
           "totals": {k: sum(t[k] for t in splits.values()) for k in ("shards", "samples", "tokens", "bytes")}}
    if "tokens_by_source" in index:
        out["tokens_by_source"] = _less(index["tokens_by_source"], tokens, copies)
    return out


def _restat(
    output: Path, index: dict[str, Any], tokens_split: Counter[str], copies_split: Counter[str],
    tokens_source: Counter[str], copies_source: Counter[str],
) -> dict[str, Any] | None:
    """``stats.json`` with the erased documents and tokens taken out of its output counts."""
    path = OutputLayout(output).stats
    if not path.is_file():
        return None
    stats = read_json(path)
    for split, c in stats.get("splits", {}).items():
        c["documents"] -= copies_split.get(split, 0)
        c["tokens"] -= tokens_split.get(split, 0)
    stats["documents"]["kept"] = sum(c["documents"] for c in stats.get("splits", {}).values())
    stats["tokens"] = sum(c["tokens"] for c in stats.get("splits", {}).values())
    if "tokens_by_source" in stats:
        stats["tokens_by_source"] = _less(stats["tokens_by_source"], tokens_source, copies_source)
    stats["shards"] = index["totals"]
    e = stats.setdefault("erased", {"erasures": 0, "documents": 0, "tokens": 0})
    e["erasures"] += 1
    e["documents"] += sum(copies_split.values())
    e["tokens"] += sum(tokens_split.values())
    return stats


def erase(output: str | os.PathLike[str], selector: Selector, dry_run: bool = False) -> tuple[ErasurePlan, dict[str, Any] | None]:
    """Plan and (unless ``dry_run``) carry out an erasure; the plan and the audit record (None when
    dry or when nothing matched)."""
    out = Path(output)
    journal = OutputLayout(out).erase_journal
    if journal.is_file():
        if dry_run:
            raise CorpusforgeError(f"{journal}: an earlier erasure is unfinished; run erase without --dry-run")
        finish_journal(out)
    elif not dry_run:
        _remove_unjournaled_temporaries(out)
    plan = plan_erasure(out, selector)
    if dry_run or plan.empty:
        return plan, None
    return plan, apply_erasure(out, plan, selector)
