"""cpudb catalog, flag and flags: the flag dictionary and the QEMU model catalog."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpudb.cli.base import catalog_reading, command, db_option, format_option, reading
from cpudb.errors import terminal_safe


# --- the catalog: flags and models ---------------------------------------------------------------


@command
def _register_catalog(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("catalog", help="the QEMU CPU model catalog: list, show, build, import libvirt's")
    sub = parser.add_subparsers(title="catalog commands", metavar="COMMAND")

    models = sub.add_parser("models", help="list model versions with their aliases and first releases")
    models.add_argument("--vendor", choices=("intel", "amd"), help="only this vendor's models (and generic ones)")
    models.add_argument("--qemu", metavar="VERSION", help="only models this QEMU release offers (e.g. 7.2)")
    db_option(models)
    format_option(models)
    models.set_defaults(func=_catalog_models)

    show = sub.add_parser("show", help="one model: features in QEMU, libvirt and kernel names, aliases, releases")
    show.add_argument("model", metavar="MODEL", help="versioned, variant, plain or libvirt name")
    db_option(show)
    format_option(show, ("table", "json"))
    show.set_defaults(func=_catalog_show)

    refs = sub.add_parser("references", help="list the reference CPUs (ref:<id>) for what-if planning")
    format_option(refs)
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
    from cpudb.outputs import tables as output
    from cpudb.store import lookup

    with catalog_reading(args) as conn:
        rows = lookup.list_models(conn, args.vendor, args.qemu)
    output.print_rows(
        args.format,
        ("model", "vendor", "aliases", "features", "qemu_first", "libvirt_first"),
        [(r.model, r.vendor, r.aliases, r.n_features, r.qemu_first, r.libvirt_first) for r in rows],
        title=f"{len(rows)} model version(s)",
    )
    return 0


def _catalog_show(args: argparse.Namespace) -> int:
    from cpudb.outputs import tables as output
    from cpudb.store import lookup

    with catalog_reading(args) as conn:
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
    from cpudb.catalog.references import read_references
    from cpudb.outputs import tables as output
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
    from cpudb.build.catalog import build
    from cpudb.resources import resource_dir

    out = Path(args.out) if args.out else resource_dir("data")
    reference = Path(args.reference) if args.reference else Path(__file__).resolve().parents[3] / "shared" / "reference"
    entries, models, references = build(reference, out)
    print(f"{out}: {entries} dictionary entries, {models} model versions, {references} reference CPUs from {reference}")
    return 0


def _catalog_import(args: argparse.Namespace) -> int:
    import json

    from cpudb.catalog.dictionary import import_libvirt

    document = import_libvirt(Path(args.folder), label=args.label)
    text = json.dumps(document, indent=1) + "\n"
    if args.output:
        from cpudb.files import write_atomically

        write_atomically(Path(args.output), text.encode())
        print(f"{args.output}: {len(document['models'])} libvirt model(s) from {args.folder}")
    else:
        sys.stdout.write(text)
    for warning in document["warnings"]:
        print(f"cpudb: warning: {terminal_safe(warning)}", file=sys.stderr)
    return 0


@command
def _register_flag(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("flag", help="everything known about a flag, by kernel, QEMU, libvirt or legacy name")
    parser.add_argument("name", metavar="NAME")
    db_option(parser)
    format_option(parser, ("table", "json"))
    parser.set_defaults(func=_flag)


def _flag(args: argparse.Namespace) -> int:
    from cpudb.outputs import tables as output
    from cpudb.store import lookup

    with catalog_reading(args) as conn:
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


@command
def _register_flags(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("flags", help="a host's flags grouped by class (guest, host-only, synthetic, ...)")
    parser.add_argument("--host", required=True, metavar="HOST")
    parser.add_argument("--dumps", metavar="DIR", action="append", help="read hosts from dump files, not a database")
    db_option(parser)
    format_option(parser)
    parser.set_defaults(func=_flags)


def _flags(args: argparse.Namespace) -> int:
    from cpudb.outputs import tables as output
    from cpudb.store import lookup

    with reading(args) as conn:
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


# --- targets -------------------------------------------------------------------------------------


@command
def _register_targets(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "targets", help="the stacks --target names (QEMU, libvirt, Nova, Proxmox VE, KubeVirt), with their evidence"
    )
    format_option(parser)
    parser.set_defaults(func=_targets)


def _targets(args: argparse.Namespace) -> int:
    from cpudb.catalog import targets
    from cpudb.outputs import tables as output

    rows = [targets.portable(), *targets.listed()]
    if args.format == "json":
        output.print_json(
            {
                "targets": [{**t.as_json(), "evidence": targets.evidence(t.name)} for t in rows],
                "rules": targets.rules().sources,
            }
        )
        return 0
    output.print_rows(
        args.format,
        ("target", "qemu", "libvirt", "nova", "proxmox", "kubevirt", "description"),
        [(t.name, t.qemu, t.libvirt or "-", t.nova or "-", t.proxmox or "-", t.kubevirt or "-", t.description)
         for t in rows],
        title=f"{len(rows)} target(s); 'portable' is the default (data/targets.yaml names the evidence of each)",
    )
    return 0
