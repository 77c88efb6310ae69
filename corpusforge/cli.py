"""The ``corpusforge`` command: run, demo, init, validate, inspect, steps, plus every command
that a module of ``corpusforge.commands`` lists in its ``COMMANDS``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from corpusforge.errors import CorpusforgeError

console = Console(stderr=True)


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False)
    sys.exit(2)


def _refuse(msg: str) -> None:
    """An output that is in use, another recipe's, or not corpusforge's to delete: exit 1."""
    console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="corpusforge")
def main() -> None:
    """Turn raw corpora into curated, tokenized, training-ready shards."""


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="Output folder or fsspec URL, e.g. s3://bucket/run (default: the recipe's output.path).")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--executor", type=click.Choice(["local", "ray"]), help="Where tasks run (default: the recipe's "
              "executor.kind, else local).")
@click.option("--address", help="Ray cluster address: auto, ray://HOST:10001 or HOST:PORT (default: the recipe's "
              "executor.address; none starts a local Ray instance).")
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
                   executor=executor or ("ray" if address else None), address=address, fresh=fresh)
    except OutputRefused as exc:
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
    console.print(
        f"[bold green]demo done[/]: {stats['documents']['kept']:,} documents, {stats['tokens']:,} tokens in "
        f"{stats['shards']['shards']} shards, validated.\noutput: {out}\n"
        f"  shard index: {out / 'shard_index.json'}\n  statistics:  {out / 'stats.json'}\n"
        f"  data card:   {out / 'README.md'}\n  report:      {out / 'report.html'} (opens offline in a browser)\n"
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
def inspect(output: str, split: str, samples: int, chars: int) -> None:
    """Decode a few samples of OUTPUT (a folder or fsspec URL) back to text, special tokens shown."""
    from corpusforge.inspect import decoded_samples

    try:
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
