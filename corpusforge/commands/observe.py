"""``corpusforge trace`` (which documents a shard row holds, where a document went) and ``corpusforge diff``."""

from __future__ import annotations

import json
import sys

import click

from corpusforge import layout as layout_names
from corpusforge.commands.output_folder import output_folder
from corpusforge.errors import CorpusforgeError


@click.command()
@click.argument("output")
@click.option("--doc-id", help="A document id: list the shard rows that hold it.")
@click.option("--shard", help="A shard's path as in shard_index.json (train/shard_00000.safetensors); needs --row.")
@click.option("--row", type=click.IntRange(min=0), help="A row of --shard: list the documents it holds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of tab-separated columns.")
def trace(output: str, doc_id: str | None, shard: str | None, row: int | None, as_json: bool) -> None:
    """Answer "where did this sample come from?" and "where did this document go?" from lineage.
    OUTPUT is a folder or an fsspec URL (s3://bucket/run)."""
    from rich.console import Console

    from corpusforge.observe.lineage import trace_document, trace_row

    if (doc_id is None) == (shard is None) or (shard is None) != (row is None):
        raise click.UsageError("give either --doc-id ID, or --shard S with --row R")
    try:
        with output_folder(output, only=(f"{layout_names.LINEAGE}/",)) as folder:
            found = trace_document(folder, doc_id) if doc_id is not None else trace_row(folder, shard, row)
    except CorpusforgeError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if not found:
        Console(stderr=True).print(f"no shard row holds document {doc_id!r} (dropped, or not in {output})")
        sys.exit(1)
    if as_json:
        for rec in found:
            click.echo(json.dumps(rec))
        return
    # Tab-separated, never cut to the terminal's width: ids and paths are copied into queries.
    click.echo("shard\trow\ttokens\tdoc_id\tsource\toffset\tmodified_by")
    for r in found:
        click.echo(f"{r['shard']}\t{r['row']}\t{r['token_start']}:{r['token_end']}\t{r['doc_id']}\t"
                   f"{r['source_uri']}\t{r['offset']}\t{','.join(r['modified_by'])}")


@click.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the difference as JSON.")
def diff(a: str, b: str, as_json: bool) -> None:
    """Say what changed between two outputs (recipe, inputs, files, totals); exit 1 if they differ.
    A and B are folders or fsspec URLs (s3://bucket/run)."""
    from corpusforge.maintain.version import diff_versions, format_diff, load_version

    def version(output: str) -> dict:
        with output_folder(output, only=(layout_names.VERSION,)) as folder:
            return load_version(folder)

    try:
        d = diff_versions(version(a), version(b))
    except CorpusforgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(d, indent=2) if as_json else format_diff(d))
    sys.exit(0 if d["same"] else 1)


COMMANDS = [trace, diff]
