"""``corpusforge erase``: remove documents from a built output (right to erasure)."""

from __future__ import annotations

import json
import sys

import click

from corpusforge.commands.output_folder import output_folder
from corpusforge.errors import CorpusforgeError


@click.command()
@click.argument("output")
@click.option("--doc-id", "doc_ids", multiple=True, metavar="ID", help="A document id to erase (repeat for more).")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Erase every document of this source (repeatable).")
@click.option("--match", metavar="REGEX", help="Erase every document whose text a Python regex matches (re.search).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the documents and the summary as JSON lines.")
def erase(output: str, doc_ids: tuple[str, ...], sources: tuple[str, ...], match: str | None, dry_run: bool,
          as_json: bool) -> None:
    """Remove documents from OUTPUT's shards and every file that holds them; exit 1 if none matched.
    OUTPUT is a folder or an fsspec URL (s3://bucket/run): its mirror is brought up to date, erased,
    and every changed or removed file is published to the store."""
    from rich.console import Console

    from corpusforge.maintain.erase import Selector
    from corpusforge.maintain.erase import erase as run_erase
    from corpusforge.runner import output_lock

    err = Console(stderr=True)
    try:
        with output_lock(output, "erase", create=False), \
                output_folder(output, write=True) as folder:  # not while a run writes the output
            plan, record = run_erase(folder, Selector(doc_ids, sources, match), dry_run=dry_run)
    except CorpusforgeError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    for doc_id in plan.unknown_ids:
        err.print(f"not found: document {doc_id!r}", highlight=False)
    for doc_id in plan.already_erased:
        err.print(f"already erased: document {doc_id!r} (see audit/erasures.jsonl)", highlight=False)
    if plan.empty:
        err.print(f"nothing matched in {output}; nothing changed", highlight=False)
        sys.exit(1)
    summary = {"dry_run": dry_run, "documents": len(plan.documents), "tokens": plan.tokens, "shards": plan.shards,
               "files": [str(p).replace(str(folder), output.rstrip("/"), 1)
                         for p in plan.text_files + plan.audit_files + list(plan.quarantine)],
               "quarantine_records": sum(plan.quarantine.values())}
    if record is not None:
        summary.update(erasure=record["erasure"], rows_removed=record["rows_removed"],
                       shards_removed=record["shards_removed"], version=record["version_after"])
    if as_json:
        for doc_id, info in plan.documents.items():
            click.echo(json.dumps({"doc_id": doc_id, **info}))
        click.echo(json.dumps(summary))
        return
    click.echo("doc_id\tsource\tsource_uri\toffset\ttokens\tshards")
    for doc_id, d in plan.documents.items():
        click.echo(f"{doc_id}\t{d['source_name']}\t{d['source_uri']}\t{d['offset']}\t{d['tokens']}\t{','.join(d['shards'])}")
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(plan.documents)} document(s), {plan.tokens:,} tokens from {len(plan.shards)} shard(s); "
               f"{len(summary['files'])} other file(s) scrubbed, {summary['quarantine_records']} quarantine record(s)"
               + ("" if record is None else f"; erasure {record['erasure']} in audit/erasures.jsonl"))


COMMANDS = [erase]
