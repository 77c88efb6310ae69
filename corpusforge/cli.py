"""The ``corpusforge`` command: run, demo, init, validate, inspect, steps, plus every command
that a module of ``corpusforge.commands`` lists in its ``COMMANDS``."""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from corpusforge.errors import AccessError, CorpusforgeError, UnusableInput
from corpusforge.layout import OutputLayout

console = Console(stderr=True)


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    sys.exit(2)


# Errors of the storage a command writes to: no retry inside the run helps, so each ends the
# command with one line (path and reason) and exit code 1; a run started again resumes.
STORAGE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}
_ERRNO_IN_MESSAGE = re.compile(r"\[errno (\d+)\]", re.I)  # pyarrow puts it in the message


def storage_error(exc: BaseException) -> OSError | None:
    """The out-of-space, over-quota, read-only or permission ``OSError`` behind ``exc``, if any:
    ``exc`` itself, its cause or context (a worker's error re-raised in the driver), or a Ray
    task error's ``cause``."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError):
            code = e.errno
            if code is None and (m := _ERRNO_IN_MESSAGE.search(str(e))):
                code = int(m.group(1))
            if code in STORAGE_ERRNOS:
                return e
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


def storage_error_line(exc: OSError, where: str | None) -> str:
    """``PATH: No space left on device (ENOSPC: the disk is full)``: the file when the error names
    one, else ``where`` (the command's output)."""
    code = exc.errno if exc.errno in STORAGE_ERRNOS else next(
        c for c in STORAGE_ERRNOS if f"[errno {c}]" in str(exc).lower())
    path = exc.filename or where or "output"
    hint = "; free space and run again to resume" if code in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{os.fsdecode(path)}: {os.strerror(code)} ({errno.errorcode[code]}: {STORAGE_ERRNOS[code]}){hint}"


class _Main(click.Group):
    """The ``corpusforge`` group: a storage error anywhere in a command, or a source or output out of
    reach (``AccessError``, or an error ``remote.access_reason`` knows), is one line, exit 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["corpusforge.argv"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AccessError as exc:
            _refuse(str(exc))
        except Exception as exc:
            from corpusforge.remote import access_error

            err = storage_error(exc)
            if err is not None:
                _refuse(storage_error_line(err, _output_of(self, ctx)))
            # Sources are named where they are planned; what is left is the store the command writes or reads.
            unreachable = access_error(exc, f"output {_output_of(self, ctx) or 'store'}")
            if unreachable is None:
                raise
            _refuse(str(unreachable))


def _output_of(group: click.Group, ctx: click.Context) -> str | None:
    """The output the failed command wrote to: its ``--output``/``OUTPUT``, else its recipe's."""
    argv = ctx.meta.get("corpusforge.argv") or []
    try:
        name, cmd, rest = group.resolve_command(ctx, list(argv))
        params = cmd.make_context(name, rest, parent=ctx, resilient_parsing=True).params
        if params.get("output"):
            return str(params["output"])
        if params.get("recipe"):
            from corpusforge.recipe import load_recipe

            return load_recipe(params["recipe"]).output.path
    except (click.ClickException, CorpusforgeError, OSError, TypeError):
        pass
    return None


def _refuse(msg: str) -> None:
    """An output that is in use, another recipe's, or not corpusforge's to delete: exit 1."""
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    sys.exit(1)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="corpusforge")
def main() -> None:
    """Turn raw corpora into curated, tokenized, training-ready shards."""


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="Output folder or fsspec URL, e.g. s3://bucket/run (default: the recipe's output.path).")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--executor", type=click.Choice(["local", "ray", "spark"]), help="Where tasks run (default: the "
              "recipe's executor.kind, else local).")
@click.option("--address", help="Ray cluster address: auto, ray://HOST:10001 or HOST:PORT (none starts a local Ray "
              "instance); with --executor spark, the Spark master: local[4], spark://HOST:7077, yarn (default: the "
              "recipe's executor.address).")
@click.option("--fresh", is_flag=True, help="Delete the output first instead of resuming (only a corpusforge "
              "output with nothing else in it; anything else is refused).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no report table.")
def run(recipe: str, output: str | None, workers: int | None, executor: str | None, address: str | None,
        fresh: bool, quiet: bool) -> None:
    """Run RECIPE (a YAML file); resumes a previous, unfinished run of the same output."""
    from corpusforge.recipe import load_recipe
    from corpusforge.remote import is_url
    from corpusforge.runner import run as run_recipe
    from corpusforge.state import OutputRefused

    if address and executor == "local":
        _fail("--address names a Ray cluster; it needs --executor ray (or executor.kind: ray)")
    try:
        r = load_recipe(recipe)
        target = output or r.output.path
        out = target if is_url(target) else Path(target).expanduser().resolve()
        run_recipe(r, str(out), workers=workers, progress=not quiet, console=console,
                   executor=executor or ("ray" if address and r.executor.kind == "local" else None), address=address,
                   fresh=fresh)
    except (OutputRefused, UnusableInput, AccessError) as exc:  # one line, exit 1: not the recipe's fault
        _refuse(str(exc))
    except CorpusforgeError as exc:
        _fail(str(exc))
    console.print(f"output: {out}")


@main.command()
@click.option("--output", "-o", type=click.Path(file_okay=False), default="corpusforge-demo", show_default=True,
              help="Output folder, replaced on every demo run (refused unless empty, missing or a corpusforge output).")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--quiet", "-q", is_flag=True)
def demo(output: str, workers: int | None, quiet: bool) -> None:
    """Run every stage offline on this Python's own documentation and standard library."""
    from corpusforge.demo import demo_recipe
    from corpusforge.recipe import load_recipe
    from corpusforge.runner import run as run_recipe
    from corpusforge.shards.validate import validate_output
    from corpusforge.state import OutputRefused

    out = Path(output).expanduser().resolve()
    try:
        stats = run_recipe(load_recipe(demo_recipe(str(out))), out, workers=workers, progress=not quiet,
                           console=console, fresh=True)
    except OutputRefused as exc:
        _refuse(str(exc))
    except CorpusforgeError as exc:
        _fail(str(exc))
    faults, _ = validate_output(out)
    if faults:
        _fail("demo output failed validation:\n" + "\n".join(faults))
    layout = OutputLayout(out)
    console.print(
        f"[bold green]demo done[/]: {stats['documents']['kept']:,} documents, {stats['tokens']:,} tokens in "
        f"{stats['shards']['shards']} shards, validated.\noutput: {out}\n"
        f"  shard index: {layout.index}\n  statistics:  {layout.stats}\n"
        f"  data card:   {layout.card}\n  report:      {layout.report} (opens offline in a browser)\n"
        f"  look inside: corpusforge inspect {out}",
        highlight=False,
    )


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--preset", type=click.Choice(["small", "production", "multimodal", "wikitext2"]),
              help="Preset to start from (wikitext2: the WikiText-2 embeddings recipe).")
@click.option("--output", "-o", default="corpusforge-output", show_default=True, help="output.path in the recipe.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--media", default="media", show_default=True,
              help="With --preset multimodal: the folder of text, images, audio and video to read.")
@click.option("--data", default="wikitext-2", show_default=True,
              help="With --preset wikitext2: the folder of WikiText-2's .txt files.")
def init(path: str, preset: str | None, output: str, force: bool, media: str, data: str) -> None:
    """Write the demo's recipe (or, with --preset multimodal, one over a folder of text and media;
    with --preset wikitext2, the WikiText-2 embeddings recipe), commented, to PATH as a starting point."""
    from corpusforge.demo import init_text
    from corpusforge.state import atomic_write_bytes

    p = Path(path)
    if p.exists() and not force:
        _fail(f"{p} exists; pass --force to overwrite it")
    atomic_write_bytes(p, init_text(str(p), output, preset, media, data).encode())
    console.print(f"wrote {p}; run it with: corpusforge run {p}")


@main.command()
@click.argument("output")
def validate(output: str) -> None:
    """Check OUTPUT (a folder or fsspec URL) against its shard_index.json; exit 1 on any fault."""
    from corpusforge.shards.validate import validate_output

    faults, summary = validate_output(output)
    if faults:
        for f in faults:
            console.print(f"[red]FAULT[/] {f}", highlight=False)
        console.print(f"{len(faults)} fault(s) in {output}")
        sys.exit(1)
    if "documents" in summary:  # a curate-only output
        console.print(f"[green]valid[/]: {summary['parts']} {summary['format']} document parts, "
                      f"{summary['documents']:,} documents (curate-only: no shards)", highlight=False)
        return
    console.print(
        f"[green]valid[/]: {summary['shards']} {summary['format']} shards, {summary['samples']:,} samples, "
        f"{summary['tokens']:,} tokens",
        highlight=False,
    )


@main.command()
@click.argument("output")
@click.option("--split", default="train", show_default=True)
@click.option("--samples", "-n", default=2, show_default=True, help="How many samples to decode.")
@click.option("--chars", default=600, show_default=True, help="Characters of each sample to print.")
@click.option("--media", "media_row", type=click.IntRange(min=0), default=None, metavar="ROW",
              help="Write the media spans of row ROW of the split as PNG (images, video frame strips) and WAV "
                   "(audio) files, decoded through the output's codebooks.")
@click.option("--media-out", default="inspect-media", show_default=True, type=click.Path(file_okay=False),
              help="Folder the --media files are written into.")
def inspect(output: str, split: str, samples: int, chars: int, media_row: int | None, media_out: str) -> None:
    """Decode a few samples of OUTPUT (a folder or fsspec URL) back to text, special tokens shown."""
    from corpusforge.inspect import decoded_samples, row_media

    try:
        if media_row is not None:
            written = row_media(output, media_row, media_out, split)
            for path, modality, codes, whole in written:
                console.print(f"wrote {path} ({modality}, {codes} codes{'' if whole else ', cut by the row'})",
                              highlight=False)
            if not written:
                console.print(f"row {media_row} of {split} holds no media span", highlight=False)
            return
        for shard, row, text in decoded_samples(output, split, samples):
            console.rule(f"{shard} row {row}")
            console.print(text[:chars] + (" …" if len(text) > chars else ""), markup=False, highlight=False)
    except CorpusforgeError as exc:
        _fail(str(exc))


@main.command()
def steps() -> None:
    """List every registered step and source with its options."""
    from corpusforge.config import allowed_params
    from corpusforge.registry import SOURCES, STEPS

    for title, reg in (("steps", STEPS), ("sources", SOURCES)):
        console.print(f"[bold]{title}[/]")
        for name in reg.names():
            cls = reg.get(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            console.print(f"  [cyan]{name}[/]: {doc}", highlight=False)
            console.print(f"      options: {', '.join(allowed_params(cls)) or '(none)'}", highlight=False)


def _add_area_commands() -> None:
    import importlib
    import pkgutil

    import corpusforge.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_add_area_commands()

if __name__ == "__main__":
    main()
