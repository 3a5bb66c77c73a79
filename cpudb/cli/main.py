"""The ``cpudb`` command line. Each command parses its options, calls one library function
and prints the result; heavy modules are imported inside the commands that need them."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys

from cpudb import __version__
from cpudb.cli.base import (
    REGISTRY,
    command,
    db_option,
    format_option,
    inventory_option,
    progress_bar,
    reading,
    selection_options,
    selection_text,
)
from cpudb.errors import CpudbError, terminal_safe


def main(argv: list[str] | None = None) -> int:
    """Run one cpudb command; return its exit code (2 for bad input, 1 for a negative answer)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at interpreter exit
        return code
    except CpudbError as exc:
        for line in exc.lines():
            print(f"cpudb: error: {line}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("cpudb: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        code = fault_exit(exc)
        if code is None:
            raise
        return code


def fault_exit(exc: BaseException) -> int | None:
    """The exit code for a fault that is not a bug, after printing its one line; None for a bug."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        print(f"cpudb: error: cannot write {terminal_safe(exc.filename or 'the output')}: {exc.strerror}; nothing was replaced",
              file=sys.stderr)
        _silence_stdout()
        return 2
    # DuckDB turns Ctrl-C during a query into its own exception ("Query interrupted").
    if type(exc).__name__ == "InterruptException" or str(exc).startswith("Query interrupted"):
        print("cpudb: interrupted", file=sys.stderr)
        return 130
    if "No space left on device" in str(exc):  # DuckDB's own I/O error
        print(f"cpudb: error: {terminal_safe(str(exc).splitlines()[0])}; nothing was replaced", file=sys.stderr)
        return 2
    return None


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so the interpreter's final flush of what is still
    buffered does not fail again (and print a traceback of its own)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def entry_point(argv: list[str] | None = None) -> None:
    """Run cpudb as a process. Ctrl-C ends it with 130 and one line at every moment: Python would
    otherwise turn an interrupt it saw inside an extension (DuckDB's start-up) into death by SIGINT
    after ``main`` returned, and restores the default handler while it shuts down."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, Ctrl-C is KeyboardInterrupt
    sys.meta_path.insert(0, _InterruptsHeldWhileImporting("duckdb"))
    try:
        code = main(argv)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the work is done; a late Ctrl-C changes nothing
    except KeyboardInterrupt:
        print("cpudb: interrupted", file=sys.stderr)
        code = 130
    if code == 130:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


class _InterruptsHeldWhileImporting:
    """Hold Ctrl-C while one package (DuckDB) is imported: an interrupt inside its extension's
    start-up aborts the process ("Critical nanobind error") instead of raising KeyboardInterrupt.
    The interrupt stays pending and arrives as the import ends. Installed for one import only."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != self.name:
            return None
        import importlib.machinery
        import signal

        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(signal, "pthread_sigmask"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                run(module)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

        spec.loader.exec_module = exec_module
        return spec


# Which module of cpudb.cli registers each command (tests/test_cli.py checks it against them all).
COMMAND_MODULES = {
    "ingest": "main", "db": "main", "hosts": "main", "common": "main", "diff": "main",
    "baseline": "baseline", "verify": "baseline", "report": "baseline",
    "catalog": "catalog", "flag": "catalog", "flags": "catalog", "targets": "catalog",
    "collect": "fleet", "drift": "fleet", "outliers": "fleet",
    "level": "planning", "whatif": "planning", "limits": "planning",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of just ``only`` when that names one (argparse setup of all
    sixteen commands costs more than a warm baseline's query work)."""
    parser = argparse.ArgumentParser(
        prog="cpudb",
        description="Choose the QEMU CPU model and extra flags every host of a KVM pool can run.",
        epilog="Selections: host names, globs (cmp-*), @group, !exclude, ref:<id>[*N]; empty means all hosts.",
    )
    parser.add_argument("--version", action="version", version=f"cpudb {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    import importlib

    # Importing a command module registers its commands; a run of one command imports only its own.
    wanted = {COMMAND_MODULES[only]} if only in COMMAND_MODULES else set(COMMAND_MODULES.values())
    for module in sorted(wanted - {"main"}):
        importlib.import_module(f"cpudb.cli.{module}")
    names = {register.__name__.removeprefix("_register_"): register for register in REGISTRY}
    for name, register in names.items():
        if only not in names or name == only:
            register(commands)
    return parser


# --- ingest ------------------------------------------------------------------------------------


@command
def _register_ingest(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="load dump files (lscpu, lscpu -J, /proc/cpuinfo, flag lists, libvirt XML, cpuid -r, collected files)",
        description="Parse dump files (folders are read recursively) and store them as host snapshots. "
        "One run is one transaction: if any file is bad nothing is stored, unless --skip-bad.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dump files or folders")
    parser.add_argument("--skip-bad", action="store_true", help="store the good files and list the bad ones (exit 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    db_option(parser)
    parser.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    from cpudb.store import db
    from cpudb.store.ingest import ingest_paths

    path = db.resolve_path(args.db)
    with progress_bar(enabled=not args.quiet, label="parsing") as progress:
        result = ingest_paths(path, args.paths, skip_bad=args.skip_bad, progress=progress)
    for failure in result.failures:
        print(f"cpudb: skipped: {terminal_safe(failure)}", file=sys.stderr)
    for note in result.notes:
        print(f"cpudb: note: {terminal_safe(note)}", file=sys.stderr)
    if not args.quiet:
        print(
            f"{path}: {result.added} new snapshot(s) of {result.hosts} host(s) from {result.files} file(s)"
            f"; {result.unchanged} already known" + (f"; {len(result.failures)} skipped" if result.failures else "")
        )
    return 1 if result.failures else 0



@command
def _register_db(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("db", help="the database itself: upgrade it to this cpudb's schema and catalog")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="bring the database to this cpudb's schema and catalog (reads never do)")
    db_option(upgrade)
    upgrade.set_defaults(func=_db_upgrade)


def _db_upgrade(args: argparse.Namespace) -> int:
    from cpudb.store import db

    path = db.resolve_path(args.db)
    was = db.upgrade(path)
    print(f"{path}: upgraded ({was})" if was else f"{path}: already current")
    return 0


# --- hosts, common, diff -----------------------------------------------------------------------


@command
def _register_hosts(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("hosts", help="list the selected hosts and their latest snapshot")
    selection_options(parser)
    format_option(parser)
    parser.set_defaults(func=_hosts)


def _hosts(args: argparse.Namespace) -> int:
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    with reading(args) as conn:
        fleet.select(conn, selection_text(args), inventory_option(args))
        rows = fleet.selected_hosts(conn)
    columns = ("host", "vendor", "model_name", "flags", "snapshot", "runs_as", "snapshots", "guest_view")
    table = [
        (
            r.host,
            r.vendor,
            r.model_name,
            r.n_flags,
            r.snapshot_at,
            f"guest ({r.hypervisor_vendor})" if r.is_guest and r.hypervisor_vendor else ("guest" if r.is_guest else "metal"),
            r.snapshots,
            r.guest_view,
        )
        for r in rows
    ]
    output.print_rows(args.format, columns, table, title=f"{len(rows)} host(s)")
    return 0


@command
def _register_common(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "common", help="the flags every selected host has, and those only some have (with counts)"
    )
    selection_options(parser)
    format_option(parser)
    parser.set_defaults(func=_common)


def _common(args: argparse.Namespace) -> int:
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    with reading(args) as conn:
        chosen = fleet.select(conn, selection_text(args), inventory_option(args))
        hosts = [row.host for row in fleet.selected_hosts(conn)]
        result = fleet.common_flags(conn)
    if args.format == "json":
        output.print_json(
            {
                "selection": chosen.describe(),
                "hosts": hosts,
                "common_flags": list(result.common),
                "partial_flags": [{"flag": f.flag, "hosts": f.hosts, "total": result.total_hosts} for f in result.partial],
            }
        )
    elif args.format == "csv":
        rows = [(flag, result.total_hosts, result.total_hosts, "common") for flag in result.common]
        rows += [(f.flag, f.hosts, result.total_hosts, "partial") for f in result.partial]
        output.print_csv(("flag", "hosts", "total", "status"), rows)
    else:
        output.print_text(
            f"{len(result.common)} flag(s) common to all {result.total_hosts} selected host(s):\n" + " ".join(result.common)
        )
        if result.partial:
            output.print_table(
                ("flag", "hosts"),
                [(f.flag, f"{f.hosts}/{result.total_hosts}") for f in result.partial],
                title=f"{len(result.partial)} flag(s) only some hosts have",
            )
    return 0


@command
def _register_diff(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("diff", help="flags only one of two hosts has")
    parser.add_argument("host_a", metavar="HOST_A")
    parser.add_argument("host_b", metavar="HOST_B")
    parser.add_argument("--dumps", metavar="DIR", action="append", help="read hosts from dump files, not a database")
    db_option(parser)
    format_option(parser)
    parser.set_defaults(func=_diff)


def _diff(args: argparse.Namespace) -> int:
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    with reading(args) as conn:
        result = fleet.diff(conn, args.host_a, args.host_b)
    if args.format == "json":
        output.print_json(
            {
                "host_a": result.host_a,
                "host_b": result.host_b,
                "only_a": list(result.only_a),
                "only_b": list(result.only_b),
                "common_count": result.common,
            }
        )
    elif args.format == "csv":
        rows = [(flag, result.host_a) for flag in result.only_a] + [(flag, result.host_b) for flag in result.only_b]
        output.print_csv(("flag", "only_on"), rows)
    else:
        output.print_text(
            f"{result.common} flag(s) in common\n"
            f"only on {result.host_a} ({len(result.only_a)}): {' '.join(result.only_a) or '-'}\n"
            f"only on {result.host_b} ({len(result.only_b)}): {' '.join(result.only_b) or '-'}"
        )
    return 0
