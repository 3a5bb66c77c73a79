"""cpudb baseline, verify and report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpudb.cli.base import (
    catalog_reading,
    command,
    format_option,
    inventory_option,
    reading,
    selection_options,
    selection_text,
)


# --- baseline ----------------------------------------------------------------------------------


def baseline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", metavar="NAME",
        help="the stack the configs are for: debian-12, ubuntu-24.04, rhel-9, proxmox-8, kubevirt-1.5, "
        "openstack-2024.1, ... ('cpudb targets' lists them; default: the hosts' collected versions, else portable)",
    )
    parser.add_argument("--qemu", metavar="VERSION", help="override the target's QEMU release (e.g. 7.2)")
    parser.add_argument("--libvirt", metavar="VERSION", help="override the target's libvirt release (e.g. 9.0)")
    parser.add_argument("--libvirt-map", metavar="FILE", help="libvirt models from 'cpudb catalog import-libvirt'")
    parser.add_argument("--nova-release", metavar="NAME", help="override the target's Nova (train, wallaby, 2024.1, 26.2.1...)")
    parser.add_argument("--require", metavar="FLAG,...", default="", help="flags the workloads need (fails if a host lacks one)")
    parser.add_argument("--allow-unmigratable", action="store_true", help="offer unmigratable features (invtsc) as extras")
    parser.add_argument("--pmu", action="store_true", help="guests have a PMU: offer PMU-dependent features (pdcm) as extras")
    parser.add_argument("--allow-guest-dumps", action="store_true",
                        help="dumps taken inside guests are meant (otherwise a pool with them is not ready)")


def analysis_options(args: argparse.Namespace):
    from cpudb.analysis.baseline import Options
    from cpudb.catalog import targets

    # Reject unknown targets and versions before any work.
    targets.resolve(args.target, args.qemu, args.libvirt, args.nova_release)
    return Options(
        target=args.target,
        qemu=args.qemu,
        libvirt=args.libvirt,
        libvirt_map=Path(args.libvirt_map) if args.libvirt_map else None,
        nova_release=args.nova_release,
        require=tuple(f.strip() for f in args.require.replace(" ", ",").split(",") if f.strip()),
        allow_unmigratable=args.allow_unmigratable,
        pmu=args.pmu,
        allow_guest_dumps=args.allow_guest_dumps,
        detail=getattr(args, "detail", False),
    )


@command
def _register_baseline(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "baseline",
        help="the QEMU CPU model and the fewest edits every selected host can run, with configs",
        description="Rank every QEMU model version the target knows against the selected hosts by the edits a "
        "config needs (extra plus disabled flags) and recommend the closest. Exit code 1 when no model is usable.",
    )
    selection_options(parser)
    baseline_options(parser)
    format_option(parser, ("table", "json"))
    parser.add_argument("--detail", action="store_true", help="JSON: every host (and every host lacking each feature), not 3 examples")
    parser.add_argument(
        "--emit", choices=("nova", "libvirt", "qemu", "proxmox", "kubevirt", "all"), action="append",
        help="print the configuration for this platform (repeatable)",
    )
    parser.set_defaults(func=_baseline)


def _baseline(args: argparse.Namespace) -> int:
    from cpudb.analysis import baseline
    from cpudb.outputs import tables as output
    from cpudb.store import cache, fleet

    options = analysis_options(args)
    entry = None if args.dumps else _cache_key(args, options)
    cached = cache.load(entry)
    if cached is not None:
        result, configs = cached
    else:
        with reading(args) as conn:
            chosen = fleet.select(conn, selection_text(args), inventory_option(args))
            result = baseline.compute(conn, chosen.describe() if not chosen.text.strip() else chosen.text, options)
            from cpudb.outputs import emit  # only a computed answer needs the emitters

            configs = emit.configs(conn, result)
        cache.store(entry, (result, configs))
    if args.format == "json":
        output.print_json(baseline_document(result, configs, detail=args.detail))
    else:
        _print_baseline(result, configs, args.emit or [])
    return 0 if result.recommended else 1


def _cache_key(args: argparse.Namespace, options) -> str | None:
    """The cache key of this baseline: database, selection, options and the files they name."""
    from cpudb.store import cache, db, fleet

    text = selection_text(args)
    inventory = fleet.inventory_path(args.inventory) if "@" in text else None
    return cache.key(
        db.resolve_path(args.db), "baseline", text, repr(options),
        cache.file_identity(inventory), cache.file_identity(options.libvirt_map),
    )


EXAMPLE_HOSTS = 3
# A selection up to this size is listed whole under "hosts"; a larger one by EXAMPLE_HOSTS names
# (unless --detail), so the answer for 100,000 hosts stays a few hundred KB, not megabytes of names.
HOSTS_LISTED = 1000


def baseline_document(result, configs, detail: bool = False) -> dict:
    """The JSON object `cpudb baseline --format json` prints (other tools read it).

    Host lists per missing feature hold EXAMPLE_HOSTS names unless ``detail``; the counts are
    always complete. ``hosts`` lists the whole selection up to HOSTS_LISTED hosts (or with
    ``detail``); ``host_count`` and ``hosts_complete`` say how many there are and whether all are
    listed."""
    rec = result.recommended
    guest = result.guest_features
    shown = None if detail else EXAMPLE_HOSTS
    complete = detail or len(result.hosts) <= HOSTS_LISTED
    return {
        "selection": result.selection,
        "hosts": list(result.hosts if complete else result.hosts[:EXAMPLE_HOSTS]),
        "host_count": len(result.hosts),
        "hosts_complete": complete,
        "vendors": list(result.vendors),
        "common_flags": list(result.common_flags),
        "target": result.target.as_json(),
        "recommended": None
        if rec is None
        else {
            "model": rec.model,
            "model_alias": rec.model_alias,
            "proxmox_model": rec.proxmox_model,
            "extra_flags": list(rec.extra_flags),
            "disabled_flags": list(rec.disabled_flags),
            "edits": rec.edits,
            "guest_flags": list(rec.guest_flags),
            "unverifiable": list(rec.unverifiable),
            "target": rec.target.as_json(),
        },
        "guest_features": None
        if guest is None
        else {
            "given": guest.given,
            "pool_common": guest.pool_common,
            "lost": list(guest.lost),
            "lost_security": list(guest.lost_security),
            "why_lost": dict(guest.why_lost),
        },
        "ranking": [
            {
                "model": m.model,
                "name_in_configs": m.alias,
                "usable": m.usable,
                "edits": m.edits,
                "missing": {f: list(h[:shown]) for f, h in m.missing.items()},
                "missing_counts": m.missing_counts,
                "extra_flags": list(m.extra_flags),
                "disabled_flags": list(m.disabled_flags),
            }
            for m in result.ranking
        ],
        "not_expressible": [{"flag": n.flag, "class": n.klass, "reason": n.reason} for n in result.not_expressible],
        "warnings": list(result.warnings),
        "findings": [
            {"severity": f.severity, "topic": f.topic, "text": f.text, "action": f.action, "hosts": list(f.hosts),
             "count": f.count}
            for f in result.findings
        ],
        "config": configs,
        "options": result.options.describe(),
    }


def _print_baseline(result, configs, emit: list[str]) -> None:
    from cpudb.outputs import tables as output

    rec = result.recommended
    target = result.target
    lines = [
        f"pool: {result.selection} - {result.total_hosts} host(s), {len(result.profiles)} CPU profile(s), "
        f"{', '.join(result.vendors)}",
        f"target: {target.label}" + (f" - {'; '.join(target.notes)}" if target.notes else ""),
    ]
    if rec:
        names = [f"libvirt, Nova, KubeVirt: {rec.model_alias}"] if rec.model_alias != rec.model else []
        if rec.proxmox_model and rec.proxmox_model != rec.model:
            names.append(f"Proxmox: {rec.proxmox_model}")
        lines.append(f"recommended: {rec.model}" + (f" ({'; '.join(names)})" if names else "") + f" - {rec.edits} edit(s)")
        lines.append(f"  extra flags ({len(rec.extra_flags)}): {' '.join(rec.extra_flags) or '-'}")
        lines.append(f"  disabled ({len(rec.disabled_flags)}): {' '.join(rec.disabled_flags) or '-'}")
        guest = result.guest_features
        lines.append(guest.headline)
        lines += [f"  {flag}: {why}" for flag, why in guest.why_lost]
    else:
        lines.append(f"recommended: none - no model {target.name} knows is usable on every selected host")
    output.print_text("\n".join(lines))
    if result.alternatives:
        output.print_table(
            ("model", "edits", "extra", "disabled", "vendor"),
            [(m.model, m.edits, len(m.extra_flags), " ".join(m.disabled_flags) or "-", m.vendor)
             for m in result.alternatives],
            title="alternatives (every one gives guests the same features; more edits)",
        )
    if result.not_expressible:
        output.print_table(
            ("flag", "class", "why it cannot be an extra flag"),
            [(n.flag, n.klass, n.reason) for n in result.not_expressible],
            title="common flags no guest CPU model can carry",
        )
    if result.findings:
        lines = ["findings:"]
        for f in result.findings:
            who = f" [{f.count} host{'s' if f.count != 1 else ''}: {', '.join(f.hosts)}{', ...' if f.count > len(f.hosts) else ''}]" if f.hosts else ""
            lines.append(f"- {f.severity}: {f.text}{who}")
            if f.action:
                lines.append(f"  what to do: {f.action}")
        output.print_text("\n".join(lines))
    wanted = ["nova", "libvirt", "qemu", "proxmox", "kubevirt"] if "all" in emit else emit
    from cpudb.outputs.emit import CONFIG_KEYS

    for platform in wanted:
        if configs:
            # Verbatim, never re-wrapped: this is pasted into config files.
            sys.stdout.write(f"\n# --- {platform} ---\n" + configs[CONFIG_KEYS[platform]])


# --- verify ------------------------------------------------------------------------------------


@command
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
    selection_options(parser)
    baseline_options(parser)
    format_option(parser, ("table", "json"))
    parser.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from cpudb.analysis import baseline
    from cpudb.analysis.verify import feature_names, verify
    from cpudb.errors import CpudbError
    from cpudb.inputs.parse import parse_file
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    guest = parse_file(args.guest)
    opener = catalog_reading if args.model and not args.dumps else reading
    with opener(args) as conn:
        if args.model:
            if args.selection:
                raise CpudbError("give either --model or a host selection, not both")
            extra = feature_names(conn, _names(args.extra))
            disabled = feature_names(conn, _names(args.disable))
            result = verify(conn, guest, args.model, extra, disabled)
        else:
            chosen = fleet.select(conn, selection_text(args), inventory_option(args))
            pool = baseline.compute(conn, chosen.text, analysis_options(args))
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


@command
def _register_report(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report",
        help="write the migration-readiness report (HTML and/or PDF)",
        description="Render the report for the selected hosts: -o FILE.html or FILE.pdf, or -o FOLDER for both.",
    )
    selection_options(parser)
    baseline_options(parser)
    parser.add_argument("-o", "--output", required=True, metavar="PATH", help="report.html, report.pdf or a folder")
    parser.add_argument("--name", metavar="NAME", help="file name in a folder (default: from the selection and date)")
    parser.add_argument("--paper", choices=("A4", "Letter"), default="A4", help="PDF page size (default: A4)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from cpudb.outputs import report
    from cpudb.store import fleet

    options = analysis_options(args)
    now = datetime.now(timezone.utc)
    with reading(args) as conn:
        chosen = fleet.select(conn, selection_text(args), inventory_option(args))
        context = report.build_context(conn, chosen.text, options, paper=args.paper, now=now,
                                       inventory=inventory_option(args))
    paths = report.output_paths(Path(args.output), args.name or report.default_name(chosen.text, now))
    for path in report.write(context, paths):
        print(path)
    return 0
