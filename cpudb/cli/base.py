"""What every cpudb command shares: the command registry and the common options."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

Command = Callable[[argparse.Namespace], int]

# --- registry and shared options ----------------------------------------------------------------------------

REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = []


def command(register: Callable[[argparse._SubParsersAction], None]):
    REGISTRY.append(register)
    return register


def db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help="database file (default: $CPUDB_DB or ./cpudb.duckdb)")


def format_option(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json", "csv")) -> None:
    parser.add_argument("--format", choices=choices, default="table", help="output format (default: table)")


def selection_options(parser: argparse.ArgumentParser, dumps: bool = True) -> None:
    parser.add_argument("selection", nargs="*", metavar="SELECTION", help="hosts to analyse (default: all)")
    parser.add_argument("--inventory", metavar="PATH", help="group definitions for @group (default: data/inventory.yaml)")
    if dumps:
        parser.add_argument(
            "--dumps", metavar="DIR", action="append", help="analyse these dump files without a database (in memory)"
        )
    db_option(parser)


def selection_text(args: argparse.Namespace) -> str:
    return " ".join(args.selection)


@contextlib.contextmanager
def reading(args: argparse.Namespace) -> Iterator:
    """A connection to the database, or to an in-memory one filled from --dumps."""
    from cpudb.store import db

    if getattr(args, "dumps", None):
        from cpudb.store.ingest import ingest_into

        conn = db.open_memory()
        ingest_into(conn, args.dumps)
    else:
        conn = db.open_read(db.resolve_path(args.db))
    try:
        yield conn
    finally:
        conn.close()


def inventory_option(args: argparse.Namespace) -> Path | None:
    return Path(args.inventory) if getattr(args, "inventory", None) else None

@contextlib.contextmanager
def progress_bar(enabled: bool, label: str, minimum: int = 200) -> Iterator:
    """A progress callback drawing a rich bar on a terminal for runs of ``minimum`` items or more,
    else None. The callback takes (done, total) and may be called from several threads."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            if total >= minimum:
                bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def catalog_reading(args: argparse.Namespace) -> Iterator:
    """The database when there is one (it carries the catalog), else an in-memory catalog."""
    from cpudb.store import db

    path = db.resolve_path(getattr(args, "db", None))
    conn = db.open_read(path) if path.exists() else db.open_memory()
    try:
        yield conn
    finally:
        conn.close()
