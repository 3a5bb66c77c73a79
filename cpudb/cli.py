"""The ``cpudb`` command line. Each command parses its options, calls one library function
and prints the result; heavy modules are imported inside the commands that need them."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from cpudb import __version__
from cpudb.errors import CpudbError

Command = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run one cpudb command; return its exit code (2 for bad input, 1 for a negative answer)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except CpudbError as exc:
        for line in str(exc).splitlines():
            print(f"cpudb: error: {line}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error.
        with contextlib.suppress(Exception):
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - keeps the interpreter from complaining at exit
        return 0
    except KeyboardInterrupt:
        print("cpudb: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    sys.exit(main())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cpudb",
        description="Choose the QEMU CPU model and extra flags every host of a KVM pool can run.",
        epilog="Selections: host names, globs (cmp-*), @group, !exclude, ref:<id>[*N]; empty means all hosts.",
    )
    parser.add_argument("--version", action="version", version=f"cpudb {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in _REGISTRY:
        register(commands)
    return parser


# --- shared options ----------------------------------------------------------------------------

_REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = []


def _command(register: Callable[[argparse._SubParsersAction], None]):
    _REGISTRY.append(register)
    return register


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help="database file (default: $CPUDB_DB or ./cpudb.duckdb)")


def _format_option(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json", "csv")) -> None:
    parser.add_argument("--format", choices=choices, default="table", help="output format (default: table)")


def _selection_options(parser: argparse.ArgumentParser, dumps: bool = True) -> None:
    parser.add_argument("selection", nargs="*", metavar="SELECTION", help="hosts to analyse (default: all)")
    parser.add_argument("--inventory", metavar="PATH", help="group definitions for @group (default: data/inventory.yaml)")
    if dumps:
        parser.add_argument(
            "--dumps", metavar="DIR", action="append", help="analyse these dump files without a database (in memory)"
        )
    _db_option(parser)


def _selection_text(args: argparse.Namespace) -> str:
    return " ".join(args.selection)


@contextlib.contextmanager
def _reading(args: argparse.Namespace) -> Iterator:
    """A connection to the database, or to an in-memory one filled from --dumps."""
    from cpudb import db

    if getattr(args, "dumps", None):
        from cpudb.ingest import ingest_into

        conn = db.open_memory()
        ingest_into(conn, args.dumps)
    else:
        conn = db.open_read(db.resolve_path(args.db))
    try:
        yield conn
    finally:
        conn.close()


def _inventory(args: argparse.Namespace) -> Path | None:
    return Path(args.inventory) if getattr(args, "inventory", None) else None


# --- ingest ------------------------------------------------------------------------------------


@_command
def _register_ingest(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="load dump files (lscpu, lscpu -J, /proc/cpuinfo, flag lists) into the database",
        description="Parse dump files (folders are read recursively) and store them as host snapshots. "
        "One run is one transaction: if any file is bad nothing is stored, unless --skip-bad.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dump files or folders")
    parser.add_argument("--skip-bad", action="store_true", help="store the good files and list the bad ones (exit 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _db_option(parser)
    parser.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    from cpudb import db
    from cpudb.ingest import ingest_paths

    path = db.resolve_path(args.db)
    with _progress(enabled=not args.quiet, label="parsing") as progress:
        result = ingest_paths(path, args.paths, skip_bad=args.skip_bad, progress=progress)
    for failure in result.failures:
        print(f"cpudb: skipped: {failure}", file=sys.stderr)
    for note in result.notes:
        print(f"cpudb: note: {note}", file=sys.stderr)
    if not args.quiet:
        print(
            f"{path}: {result.added} new snapshot(s) of {result.hosts} host(s) from {result.files} file(s)"
            f"; {result.unchanged} already known" + (f"; {len(result.failures)} skipped" if result.failures else "")
        )
    return 1 if result.failures else 0


@contextlib.contextmanager
def _progress(enabled: bool, label: str) -> Iterator:
    """A progress callback drawing a rich bar on a terminal for long runs, else a no-op."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            if total >= 200:
                bar.update(task, completed=done, total=total)

        yield update


# --- hosts, common, diff -----------------------------------------------------------------------


@_command
def _register_hosts(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("hosts", help="list the selected hosts and their latest snapshot")
    _selection_options(parser)
    _format_option(parser)
    parser.set_defaults(func=_hosts)


def _hosts(args: argparse.Namespace) -> int:
    from cpudb import fleet, output

    with _reading(args) as conn:
        fleet.select(conn, _selection_text(args), _inventory(args))
        rows = fleet.selected_hosts(conn)
    columns = ("host", "vendor", "model_name", "flags", "snapshot", "runs_as", "snapshots")
    table = [
        (
            r.host,
            r.vendor,
            r.model_name,
            r.n_flags,
            r.snapshot_at,
            f"guest ({r.hypervisor_vendor})" if r.is_guest and r.hypervisor_vendor else ("guest" if r.is_guest else "metal"),
            r.snapshots,
        )
        for r in rows
    ]
    output.print_rows(args.format, columns, table, title=f"{len(rows)} host(s)")
    return 0


@_command
def _register_common(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "common", help="the flags every selected host has, and those only some have (with counts)"
    )
    _selection_options(parser)
    _format_option(parser)
    parser.set_defaults(func=_common)


def _common(args: argparse.Namespace) -> int:
    from cpudb import fleet, output

    with _reading(args) as conn:
        chosen = fleet.select(conn, _selection_text(args), _inventory(args))
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


@_command
def _register_diff(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("diff", help="flags only one of two hosts has")
    parser.add_argument("host_a", metavar="HOST_A")
    parser.add_argument("host_b", metavar="HOST_B")
    parser.add_argument("--dumps", metavar="DIR", action="append", help="read hosts from dump files, not a database")
    _db_option(parser)
    _format_option(parser)
    parser.set_defaults(func=_diff)


def _diff(args: argparse.Namespace) -> int:
    from cpudb import fleet, output

    with _reading(args) as conn:
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


# --- the catalog: flags and models ---------------------------------------------------------------


@contextlib.contextmanager
def _catalog_reading(args: argparse.Namespace) -> Iterator:
    """The database when there is one (it carries the catalog), else an in-memory catalog."""
    from cpudb import db

    path = db.resolve_path(getattr(args, "db", None))
    conn = db.open_read(path) if path.exists() else db.open_memory()
    try:
        yield conn
    finally:
        conn.close()


@_command
def _register_catalog(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("catalog", help="the QEMU CPU model catalog: list, show, build, import libvirt's")
    sub = parser.add_subparsers(title="catalog commands", metavar="COMMAND")

    models = sub.add_parser("models", help="list model versions with their aliases and first releases")
    models.add_argument("--vendor", choices=("intel", "amd"), help="only this vendor's models (and generic ones)")
    models.add_argument("--qemu", metavar="VERSION", help="only models this QEMU release offers (e.g. 7.2)")
    _db_option(models)
    _format_option(models)
    models.set_defaults(func=_catalog_models)

    show = sub.add_parser("show", help="one model: features in QEMU, libvirt and kernel names, aliases, releases")
    show.add_argument("model", metavar="MODEL", help="versioned, variant, plain or libvirt name")
    _db_option(show)
    _format_option(show, ("table", "json"))
    show.set_defaults(func=_catalog_show)

    refs = sub.add_parser("references", help="list the reference CPUs (ref:<id>) for what-if planning")
    _format_option(refs)
    refs.set_defaults(func=_catalog_references)

    build = sub.add_parser("build", help="regenerate data/flags.json and data/models.json from the reference tables")
    build.add_argument("--reference", metavar="DIR", help="reference folder (default: ../shared/reference of the checkout)")
    build.add_argument("--out", metavar="DIR", help="where to write (default: the data/ folder cpudb reads)")
    build.set_defaults(func=_catalog_build)

    importer = sub.add_parser(
        "import-libvirt", help="translate a libvirt cpu_map folder (e.g. /usr/share/libvirt/cpu_map) for --libvirt-map"
    )
    importer.add_argument("folder", metavar="DIR")
    importer.add_argument("-o", "--output", metavar="FILE", help="write the JSON here (default: standard output)")
    importer.add_argument("--label", metavar="TEXT", help="say where the cpu_map came from (package and version)")
    importer.set_defaults(func=_catalog_import)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _catalog_models(args: argparse.Namespace) -> int:
    from cpudb import lookup, output

    with _catalog_reading(args) as conn:
        rows = lookup.list_models(conn, args.vendor, args.qemu)
    output.print_rows(
        args.format,
        ("model", "vendor", "aliases", "features", "qemu_first", "libvirt_first"),
        [(r.model, r.vendor, r.aliases, r.n_features, r.qemu_first, r.libvirt_first) for r in rows],
        title=f"{len(rows)} model version(s)",
    )
    return 0


def _catalog_show(args: argparse.Namespace) -> int:
    from cpudb import lookup, output

    with _catalog_reading(args) as conn:
        info = lookup.model_info(conn, args.model)
    if args.format == "json":
        output.print_json(info)
        return 0
    aliases = ", ".join(f"{alias} ({kind})" for alias, kind in info.aliases) or "none"
    output.print_text(
        f"{info.model}: {info.model_id or info.note} [{info.vendor}, family {info.family} model {info.model_number}]\n"
        f"aliases: {aliases}\n"
        f"first offered by QEMU {info.qemu_first or '?'}, libvirt {info.libvirt_first or info.libvirt_first_range or 'n/a'}"
        + (f"\n{info.note}" if info.note else "")
    )
    output.print_table(
        ("qemu", "libvirt", "kernel", "class"),
        [(f.qemu, f.libvirt, f.kernel or "-", f.klass) for f in info.qemu_features],
        title=f"{len(info.qemu_features)} feature(s)",
    )
    extra = [f for f in info.features if f.required_by != "qemu"]
    if extra:
        output.print_table(
            ("feature", "required by"),
            [(f.qemu, f"{f.required_by} definition only") for f in extra],
            title="libvirt's definition also requires (checked against hosts by libvirt and Nova)",
        )
    return 0


def _catalog_references(args: argparse.Namespace) -> int:
    from cpudb import output
    from cpudb.reference_build import read_references
    from cpudb.resources import data_path

    rows = [
        (
            f"ref:{r['id']}", r["name"], r["launched"], r["microarchitecture"],
            "missing: no evidence" if r["missing"] else ", ".join(r["evidence"]),
            " ".join(sorted(r["inferred"])) or "-",
        )
        for r in read_references(data_path("reference_cpus", "references.json"))
    ]
    output.print_rows(args.format, ("id", "name", "launched", "microarchitecture", "evidence", "inferred"), rows,
                      title="reference CPUs (use as ref:<id> or ref:<id>*<count> in selections)")
    return 0


def _catalog_build(args: argparse.Namespace) -> int:
    from cpudb.catalog_build import build
    from cpudb.resources import resource_dir

    out = Path(args.out) if args.out else resource_dir("data")
    reference = Path(args.reference) if args.reference else Path(__file__).resolve().parents[2] / "shared" / "reference"
    entries, models, references = build(reference, out)
    print(f"{out}: {entries} dictionary entries, {models} model versions, {references} reference CPUs from {reference}")
    return 0


def _catalog_import(args: argparse.Namespace) -> int:
    import json

    from cpudb.catalog import import_libvirt

    document = import_libvirt(Path(args.folder), label=args.label)
    text = json.dumps(document, indent=1) + "\n"
    if args.output:
        from cpudb.report_io import write_atomically

        write_atomically(Path(args.output), text.encode())
        print(f"{args.output}: {len(document['models'])} libvirt model(s) from {args.folder}")
    else:
        sys.stdout.write(text)
    for warning in document["warnings"]:
        print(f"cpudb: warning: {warning}", file=sys.stderr)
    return 0


@_command
def _register_flag(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("flag", help="everything known about a flag, by kernel, QEMU, libvirt or legacy name")
    parser.add_argument("name", metavar="NAME")
    _db_option(parser)
    _format_option(parser, ("table", "json"))
    parser.set_defaults(func=_flag)


def _flag(args: argparse.Namespace) -> int:
    from cpudb import lookup, output

    with _catalog_reading(args) as conn:
        entries = lookup.flag_info(conn, args.name)
    if args.format == "json":
        output.print_json(entries)
        return 0
    for entry in entries:
        rows = [
            ("kernel", entry.kernel or "(not printed by current kernels)"),
            ("legacy kernel names", " ".join(entry.legacy) or "-"),
            ("QEMU", " ".join(filter(None, [entry.qemu, *entry.qemu_aliases])) or "-"),
            ("libvirt / Nova", entry.libvirt or "-"),
            ("location", entry.location),
            ("class", entry.klass),
            ("why", entry.reason),
            ("KVM", entry.kvm or "-"),
            ("description", entry.description or "-"),
        ]
        if entry.derivations:
            rows.append(("shows", ", ".join(f"{feature} on {vendor}" for vendor, feature in entry.derivations)))
        if entry.models:
            shown = entry.models[:6]
            rows.append(("in models", " ".join(shown) + (f" and {len(entry.models) - 6} more" if len(entry.models) > 6 else "")))
        output.print_table(("", ""), rows, title=entry.entry_id, header=False)
    return 0


@_command
def _register_flags(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("flags", help="a host's flags grouped by class (guest, host-only, synthetic, ...)")
    parser.add_argument("--host", required=True, metavar="HOST")
    parser.add_argument("--dumps", metavar="DIR", action="append", help="read hosts from dump files, not a database")
    _db_option(parser)
    _format_option(parser)
    parser.set_defaults(func=_flags)


def _flags(args: argparse.Namespace) -> int:
    from cpudb import lookup, output

    with _reading(args) as conn:
        grouped = lookup.host_flags_by_class(conn, args.host)
    if args.format == "json":
        output.print_json({klass: [flag for flag, _ in flags] for klass, flags in grouped.items()})
    elif args.format == "csv":
        output.print_csv(("flag", "class"), [(flag, klass) for klass, flags in grouped.items() for flag, _ in flags])
    else:
        output.print_table(
            ("class", "n", "flags"),
            [(klass, len(flags), " ".join(flag for flag, _ in flags)) for klass, flags in grouped.items()],
            title=f"{args.host}: {sum(len(f) for f in grouped.values())} flag(s) by class",
        )
    return 0


# --- baseline ----------------------------------------------------------------------------------


def _baseline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qemu", metavar="VERSION", help="only models this QEMU release offers (e.g. 7.2)")
    parser.add_argument("--libvirt", metavar="VERSION", help="only models this libvirt knows, named as it names them")
    parser.add_argument("--libvirt-map", metavar="FILE", help="libvirt models from 'cpudb catalog import-libvirt'")
    parser.add_argument("--nova-release", metavar="NAME", help="shape the Nova config (rocky, train, wallaby, 2024.1...)")
    parser.add_argument("--require", metavar="FLAG,...", default="", help="flags the workloads need (fails if a host lacks one)")
    parser.add_argument("--allow-unmigratable", action="store_true", help="offer unmigratable features (invtsc) as extras")


def _options(args: argparse.Namespace):
    from cpudb.baseline import Options

    if args.nova_release:
        from cpudb.emit import nova_number

        nova_number(args.nova_release)  # reject unknown releases before any work
    for version in (args.qemu, args.libvirt):
        if version:
            from cpudb.catalog import release_tuple

            release_tuple(version)
    return Options(
        qemu=args.qemu,
        libvirt=args.libvirt,
        libvirt_map=Path(args.libvirt_map) if args.libvirt_map else None,
        nova_release=args.nova_release,
        require=tuple(f.strip() for f in args.require.replace(" ", ",").split(",") if f.strip()),
        allow_unmigratable=args.allow_unmigratable,
    )


@_command
def _register_baseline(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "baseline",
        help="the QEMU CPU model and extra flags every selected host can run, with configs",
        description="Rank every QEMU model version against the selected hosts and recommend the best "
        "compatible one with its extra flags. Exit code 1 when no model is compatible.",
    )
    _selection_options(parser)
    _baseline_options(parser)
    _format_option(parser, ("table", "json"))
    parser.add_argument(
        "--emit", choices=("nova", "libvirt", "qemu", "proxmox", "kubevirt", "all"), action="append",
        help="print the configuration for this platform (repeatable)",
    )
    parser.set_defaults(func=_baseline)


def _baseline(args: argparse.Namespace) -> int:
    from cpudb import baseline, fleet, output

    options = _options(args)
    with _reading(args) as conn:
        chosen = fleet.select(conn, _selection_text(args), _inventory(args))
        result = baseline.compute(conn, chosen.describe() if not chosen.text.strip() else chosen.text, options)
        configs = baseline.configs(conn, result)
    if args.format == "json":
        output.print_json(baseline_document(result, configs))
    else:
        _print_baseline(result, configs, args.emit or [])
    return 0 if result.recommended else 1


def baseline_document(result, configs) -> dict:
    """The JSON object `cpudb baseline --format json` prints (other tools read it)."""
    rec = result.recommended
    return {
        "selection": result.selection,
        "hosts": list(result.hosts),
        "vendors": list(result.vendors),
        "common_flags": list(result.common_flags),
        "recommended": None
        if rec is None
        else {
            "model": rec.model,
            "model_alias": rec.model_alias,
            "extra_flags": list(rec.extra_flags),
            "disabled_flags": list(rec.disabled_flags),
            "guest_flags": list(rec.guest_flags),
            "unverifiable": list(rec.unverifiable),
            "coverage": round(rec.coverage, 4),
        },
        "ranking": [
            {
                "model": m.model,
                "compatible": m.compatible,
                "coverage": round(m.coverage, 4),
                "missing": {f: list(h) for f, h in m.missing.items()},
                "missing_counts": m.missing_counts,
                "extra_flags": list(m.extra_flags),
                "disabled_flags": list(m.disabled_flags),
                "near_miss": m.near_miss,
            }
            for m in result.ranking
        ],
        "not_expressible": [{"flag": n.flag, "class": n.klass, "reason": n.reason} for n in result.not_expressible],
        "warnings": list(result.warnings),
        "config": configs,
        "options": result.options.describe(),
    }


def _print_baseline(result, configs, emit: list[str]) -> None:
    from cpudb import output

    rec = result.recommended
    lines = [
        f"pool: {result.selection} - {result.total_hosts} host(s), {len(result.profiles)} CPU profile(s), "
        f"{', '.join(result.vendors)}"
    ]
    if rec:
        lines.append(f"recommended: {rec.model}" + (f" (configs: {rec.model_alias})" if rec.model_alias != rec.model else ""))
        lines.append(f"extra flags ({len(rec.extra_flags)}): {' '.join(rec.extra_flags) or '-'}")
        if rec.disabled_flags:
            lines.append(f"disabled: {' '.join(rec.disabled_flags)}")
        lines.append(f"coverage of the pool's common guest features: {rec.coverage:.0%}")
    else:
        lines.append("recommended: none - no model is compatible with every selected host")
    output.print_text("\n".join(lines))
    top = [m for m in result.ranking if m.compatible][:10]
    output.print_table(
        ("model", "coverage", "extra", "disabled", "vendor"),
        [(m.model, f"{m.coverage:.0%}", len(m.extra_flags), " ".join(m.disabled_flags) or "-", m.vendor) for m in top],
        title="best compatible models",
    )
    if result.near_misses:
        output.print_table(
            ("model", "coverage", "would need disabled", "lacking hosts"),
            [
                (m.model, f"{m.coverage:.0%}", " ".join(m.missing),
                 "; ".join(f"{f}: {m.missing_counts[f]}" for f in m.missing))
                for m in result.near_misses
            ],
            title="near misses (need features disabled; Nova accepts -flag from Wallaby)",
        )
    if result.not_expressible:
        output.print_table(
            ("flag", "class", "why it cannot be an extra flag"),
            [(n.flag, n.klass, n.reason) for n in result.not_expressible],
            title="common flags no guest CPU model can carry",
        )
    if result.warnings:
        output.print_text("warnings:\n" + "\n".join(f"- {w}" for w in result.warnings))
    wanted = ["nova", "libvirt", "qemu", "proxmox", "kubevirt"] if "all" in emit else emit
    from cpudb.emit import CONFIG_KEYS

    for platform in wanted:
        if configs:
            # Verbatim, never re-wrapped: this is pasted into config files.
            sys.stdout.write(f"\n# --- {platform} ---\n" + configs[CONFIG_KEYS[platform]])


# --- verify ------------------------------------------------------------------------------------


@_command
def _register_verify(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify",
        help="check a dump taken inside a guest against its configuration (exit 1 if flags are missing)",
        description="Compare the flags a guest shows with those its CPU model and extra flags should give it: "
        "the recommendation for SELECTION, or --model with --extra/--disable.",
    )
    parser.add_argument("--guest", required=True, metavar="DUMP", help="lscpu or /proc/cpuinfo taken inside the guest")
    parser.add_argument("--model", metavar="MODEL", help="the guest's CPU model (instead of a selection's recommendation)")
    parser.add_argument("--extra", default="", metavar="F1,F2", help="extra flags it was given (any spelling)")
    parser.add_argument("--disable", default="", metavar="F1,F2", help="flags it was given with '-'")
    _selection_options(parser)
    _baseline_options(parser)
    _format_option(parser, ("table", "json"))
    parser.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from cpudb import baseline, fleet, output
    from cpudb.errors import CpudbError
    from cpudb.parse import parse_file
    from cpudb.verify import feature_names, verify

    guest = parse_file(args.guest)
    reading = _catalog_reading if args.model and not args.dumps else _reading
    with reading(args) as conn:
        if args.model:
            if args.selection:
                raise CpudbError("give either --model or a host selection, not both")
            extra = feature_names(conn, _names(args.extra))
            disabled = feature_names(conn, _names(args.disable))
            result = verify(conn, guest, args.model, extra, disabled)
        else:
            chosen = fleet.select(conn, _selection_text(args), _inventory(args))
            pool = baseline.compute(conn, chosen.text, _options(args))
            if pool.recommended is None:
                raise CpudbError("no model is compatible with the selection: nothing to verify against")
            rec = pool.recommended
            result = verify(conn, guest, rec.model, rec.extra_flags, rec.disabled_flags)
    if args.format == "json":
        output.print_json(result)
    else:
        output.print_text(
            f"guest {result.guest} against {result.model}"
            + (f" +{',+'.join(result.extra_flags)}" if result.extra_flags else "")
            + (f" -{',-'.join(result.disabled_flags)}" if result.disabled_flags else "")
            + f"\n{result.verdict}\n"
            f"missing ({len(result.missing)}): {' '.join(result.missing) or '-'}\n"
            f"unexpected ({len(result.unexpected)}): {' '.join(result.unexpected) or '-'}\n"
            f"set by KVM or QEMU in every guest: {' '.join(result.added_by_kvm) or '-'}\n"
            f"ignored (synthetic, OS state, hypervisor bit, unknown): {len(result.ignored)}"
        )
    return 0 if result.ok else 1


def _names(text: str) -> list[str]:
    return [n.strip().lstrip("+") for n in text.replace(" ", ",").split(",") if n.strip()]


# --- report ------------------------------------------------------------------------------------


@_command
def _register_report(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report",
        help="write the migration-readiness report (HTML and/or PDF)",
        description="Render the report for the selected hosts: -o FILE.html or FILE.pdf, or -o FOLDER for both.",
    )
    _selection_options(parser)
    _baseline_options(parser)
    parser.add_argument("-o", "--output", required=True, metavar="PATH", help="report.html, report.pdf or a folder")
    parser.add_argument("--name", metavar="NAME", help="file name in a folder (default: from the selection and date)")
    parser.add_argument("--paper", choices=("A4", "Letter"), default="A4", help="PDF page size (default: A4)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from cpudb import db, fleet, report

    options = _options(args)
    now = datetime.now(timezone.utc)
    with _reading(args) as conn:
        chosen = fleet.select(conn, _selection_text(args), _inventory(args))
        label = "cpudb.duckdb" if args.dumps else str(db.resolve_path(args.db))
        context = report.build_context(conn, chosen.text, options, paper=args.paper, now=now, db_label=label)
    paths = report.output_paths(Path(args.output), args.name or report.default_name(chosen.text, now))
    for path in report.write(context, paths):
        print(path)
    return 0


# --- planning: level, whatif, limits ---------------------------------------------------------


@_command
def _register_level(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "level", help="x86-64 psABI level (v2, v3, v4) of each CPU profile and of the pool, and which guest OSes that allows"
    )
    _selection_options(parser)
    _baseline_options(parser)
    _format_option(parser)
    parser.set_defaults(func=_level)


def _level(args: argparse.Namespace) -> int:
    from cpudb import baseline, fleet, output, planning

    with _reading(args) as conn:
        chosen = fleet.select(conn, _selection_text(args), _inventory(args))
        result = planning.pool_level(conn, baseline.compute(conn, chosen.text, _options(args)))
    if args.format == "json":
        output.print_json(result)
        return 0
    rows = [
        (p.profile, p.hosts, ", ".join(p.sample_hosts), p.cpu, p.microarchitecture or "-", p.level,
         " ".join(p.missing_for_next) or "-")
        for p in result.profiles
    ]
    if args.format == "csv":
        output.print_csv(("profile", "hosts", "sample_hosts", "cpu", "microarchitecture", "level", "lacks_for_next"), rows)
        return 0
    output.print_table(("profile", "hosts", "e.g.", "CPU", "micro-arch.", "level", "lacks for the next level"), rows,
                       title="x86-64 level of each CPU profile")
    guest = f"; guests of {result.recommended} see {result.guest_level}" if result.guest_level else ""
    lines = [f"pool: every host reaches {result.common_level}{guest}",
             f"guest systems it runs: {'; '.join(result.systems_allowed)}"]
    if result.systems_excluded:
        lines.append(f"not: {'; '.join(result.systems_excluded)}")
    if result.held_back_by:
        lines.append(f"held at this level by: {', '.join(result.held_back_by)}")
    output.print_text("\n".join(lines))
    return 0


@_command
def _register_whatif(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "whatif", help="before/after: the pool's model, extra flags, guest features and level if hosts are added or retired"
    )
    _selection_options(parser)
    parser.add_argument("--add", default="", metavar="ITEMS", help="hosts or reference CPUs to add: ref:turin*8, cmp-new-*")
    parser.add_argument("--remove", default="", metavar="PATTERNS", help="hosts to retire: cmp-bdw-*")
    _baseline_options(parser)
    _format_option(parser, ("table", "json"))
    parser.set_defaults(func=_whatif)


def _whatif(args: argparse.Namespace) -> int:
    from cpudb import output, planning

    with _reading(args) as conn:
        result = planning.whatif(conn, _selection_text(args), args.add, args.remove, _options(args), _inventory(args))
    if args.format == "json":
        output.print_json(result)
        return 0
    b, a = result.before, result.after
    output.print_table(
        ("", "before", "after"),
        [
            ("selection", b.selection, a.selection),
            ("hosts (profiles)", f"{b.hosts} ({b.profiles})", f"{a.hosts} ({a.profiles})"),
            ("model", b.model or "none compatible", a.model or "none compatible"),
            ("extra flags", " ".join(b.extra_flags) or "-", " ".join(a.extra_flags) or "-"),
            ("guest flags", len(b.guest_flags), len(a.guest_flags)),
            ("x86-64 level", b.level or "-", a.level or "-"),
        ],
        title="what if",
    )
    notable = lambda groups: "; ".join(f"{k}: {' '.join(v)}" for k, v in groups)  # noqa: E731
    output.print_text(
        f"guests gain ({len(result.gained)}): {' '.join(result.gained) or '-'}"
        + (f"\n  notable: {notable(result.gained_notable)}" if result.gained_notable else "")
        + f"\nguests lose ({len(result.lost)}): {' '.join(result.lost) or '-'}"
        + (f"\n  notable: {notable(result.lost_notable)}" if result.lost_notable else "")
    )
    return 0


@_command
def _register_limits(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "limits", help="which CPU profiles hold the pool back: gains if each were retired, and what a target needs retired"
    )
    _selection_options(parser)
    parser.add_argument(
        "--target", default="", metavar="MODEL|LEVEL|FLAG,...",
        help="reach this: a CPU model, an x86-64 level (v3, v4) and/or guest flags (avx512f,amx_tile)",
    )
    _baseline_options(parser)
    _format_option(parser, ("table", "json"))
    parser.set_defaults(func=_limits)


def _limits(args: argparse.Namespace) -> int:
    from cpudb import fleet, output, planning

    with _reading(args) as conn:
        chosen = fleet.select(conn, _selection_text(args), _inventory(args))
        result = planning.limits(conn, chosen.text, args.target, _options(args))
    if args.format == "json":
        output.print_json(result)
        return 0
    output.print_text(f"{result.selection}: guests can share {result.guest_features} guest features today")
    output.print_table(
        ("retire", "hosts", "CPU", "guests would gain", "notable"),
        [
            (r.profile, r.hosts, r.cpu, f"{len(r.gained)}: {' '.join(r.gained)}" if r.gained else "0",
             "; ".join(f"{k}: {' '.join(v)}" for k, v in r.gained_notable) or "-")
            for r in result.retirements
        ],
        title="one profile at a time (leave-one-out), most gain first",
    )
    output.print_table(
        ("step", "retired", "hosts left", "guest features"),
        [(i, s.retired or "(as is)", s.hosts_left, s.guest_features) for i, s in enumerate(result.steps)],
        title="retiring greedily, the profile that gains most at each step",
    )
    if result.target:
        t = result.target
        if t.reached_now:
            output.print_text(f"target {t.target}: reached as the pool is")
        elif not t.reachable:
            output.print_text(f"target {t.target}: no CPU profile of the pool meets it")
        else:
            output.print_table(
                ("retire", "hosts", "CPU", "because"), [list(r) for r in t.retire],
                title=f"target {t.target}: retire these {len(t.retire)} profile(s), {t.hosts_retired} host(s); "
                f"{t.hosts_kept} host(s) stay (exact: a target is met when every remaining profile meets it)",
            )
    return 0
