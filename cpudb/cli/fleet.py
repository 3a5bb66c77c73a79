"""cpudb collect, drift and outliers: getting dumps in, and noticing hosts that change."""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import datetime, timezone
from pathlib import Path

from cpudb.cli.base import (
    command,
    format_option,
    inventory_option,
    progress_bar,
    reading,
    selection_options,
    selection_text,
)
from cpudb.errors import CpudbError, terminal_safe

# --- collect -----------------------------------------------------------------------------------


@command
def _register_collect(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "collect",
        help="run lscpu, /proc/cpuinfo, virsh domcapabilities and cpuid -r here or over ssh; one file per host",
        description="Collect dumps cpudb ingests: on this machine, or on each host over the system ssh "
        "(BatchMode, so keys or an agent must be set up). A host that fails is reported with the reason "
        "and nothing is written for it; files are written whole or not at all. Exit 1 if any host failed.",
    )
    parser.add_argument("--ssh", nargs="+", metavar="HOST", default=[], help="[user@]host to collect over ssh")
    parser.add_argument("--ssh-file", metavar="FILE", help="a file listing one [user@]host per line (# comments)")
    parser.add_argument("-o", "--output", metavar="DIR", default="dumps", help="folder for the files (default: dumps)")
    parser.add_argument("--parallel", type=int, default=16, metavar="N", help="hosts collected at once (default: 16)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="give up on a host after this long, connection included (default: 30)")
    parser.add_argument("--ssh-option", action="append", default=[], metavar="OPT",
                        help="passed to ssh as -o OPT (e.g. Port=2222); repeatable")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    from cpudb.inputs.collect import collect, read_targets

    if args.parallel < 1 or args.timeout <= 0:
        raise CpudbError("--parallel must be at least 1 and --timeout positive")
    targets = list(args.ssh)
    if args.ssh_file:
        targets += read_targets(Path(args.ssh_file))
    ssh_options = tuple(part for option in args.ssh_option for part in ("-o", option))
    out_dir = Path(args.output)
    total = len(targets) or 1
    with progress_bar(not args.quiet, "collecting", minimum=1) as update:
        done = itertools.count(1)  # next() on a count is atomic: hosts finish in worker threads
        on_done = (lambda _outcome: update(next(done), total)) if update else None
        outcomes = collect(targets or None, out_dir, args.parallel, args.timeout, ssh_options, on_done)
    failed = [o for o in outcomes if o.error]
    for outcome in outcomes:
        if outcome.error:
            print(f"cpudb: {terminal_safe(outcome.target)}: failed: {terminal_safe(outcome.error)}", file=sys.stderr)
        for reason in outcome.missing:
            print(f"cpudb: {terminal_safe(outcome.target)}: not collected: {terminal_safe(reason)}", file=sys.stderr)
    written = len(outcomes) - len(failed)
    print(f"{out_dir}: {written} of {len(outcomes)} host(s) collected" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


# --- drift and outliers --------------------------------------------------------------------------


@command
def _register_drift(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "drift",
        help="hosts whose flags, microcode or kernel changed between snapshots (exit 1 if guest flags were lost)",
        description="Compare each selected host's consecutive snapshots. Exit 1 when a guest-settable flag "
        "disappeared (guests started with it cannot migrate to the host any more): run it from cron.",
    )
    selection_options(parser, dumps=False)
    parser.add_argument("--since", metavar="DATE", help="only changes seen in snapshots taken from DATE on (ISO 8601)")
    format_option(parser)
    parser.set_defaults(func=_drift)


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CpudbError(f"--since {text!r}: not an ISO 8601 date (2026-11-01 or 2026-11-01T08:00)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _drift(args: argparse.Namespace) -> int:
    from cpudb.analysis import drift
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    since = _since(args.since)
    with reading(args) as conn:
        fleet.select(conn, selection_text(args), inventory_option(args))
        found = drift.changes(conn, since)
        with_history, hosts = drift.hosts_with_history(conn)
    alarming = [c for c in found if c.alarming]
    if args.format == "json":
        output.print_json({"hosts": hosts, "hosts_with_history": with_history, "changes": found})
    else:
        columns = ("host", "before", "after", "removed", "added", "microcode", "kernel", "guest flags lost")
        rows = [
            (
                c.host,
                c.before,
                c.after,
                " ".join(c.removed),
                " ".join(c.added),
                " → ".join(v or "?" for v in c.microcode) if c.microcode else "",
                " → ".join(v or "?" for v in c.kernel) if c.kernel else "",
                " ".join(c.lost),
            )
            for c in found
        ]
        if args.format == "csv":
            output.print_csv(columns, rows)
        elif rows:
            output.print_table(columns, rows, title=f"{len(found)} change(s) on {len({c.host for c in found})} host(s)")
        else:
            output.print_text(f"no changes: {with_history} of {hosts} selected host(s) have more than one snapshot")
    for change in alarming:
        print(f"cpudb: {change.host} lost guest flag(s) {' '.join(change.lost)} at {change.after:%Y-%m-%d %H:%M}",
              file=sys.stderr)
    return 1 if alarming else 0


@command
def _register_outliers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "outliers",
        help="hosts whose flags differ from others with the same CPU model and stepping (BIOS, microcode)",
    )
    selection_options(parser)
    format_option(parser)
    parser.set_defaults(func=_outliers)


def _outliers(args: argparse.Namespace) -> int:
    from cpudb.analysis.risks import outliers
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    with reading(args) as conn:
        fleet.select(conn, selection_text(args), inventory_option(args))
        found = outliers(conn)
    columns = ("host", "cpu", "peers", "lacks", "has too")
    rows = sorted(
        (host, o.cpu, o.peers, " ".join(o.missing), " ".join(o.extra)) for o in found for host in o.hosts
    )
    if args.format == "json":
        output.print_json(
            {"outliers": sorted(({"host": h, "cpu": o.cpu, "peers": o.peers, "missing": list(o.missing),
                                  "extra": list(o.extra)} for o in found for h in o.hosts), key=lambda d: d["host"])}
        )
    elif args.format == "csv":
        output.print_csv(columns, rows)
    elif rows:
        output.print_table(columns, rows, title=f"{len(found)} outlier host(s)")
    else:
        output.print_text("no outliers: hosts with the same CPU model and stepping have the same flags")
    return 0
