"""cpudb level, whatif and limits: planning hardware changes."""

from __future__ import annotations

import argparse

from cpudb.cli.base import command, format_option, inventory_option, reading, selection_options, selection_text
from cpudb.cli.baseline import analysis_options, baseline_options


# --- planning: level, whatif, limits ---------------------------------------------------------


@command
def _register_level(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "level", help="x86-64 psABI level (v2, v3, v4) of each CPU profile and of the pool, and which guest OSes that allows"
    )
    selection_options(parser)
    baseline_options(parser)
    format_option(parser)
    parser.set_defaults(func=_level)


def _level(args: argparse.Namespace) -> int:
    from cpudb.analysis import baseline, planning
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    with reading(args) as conn:
        chosen = fleet.select(conn, selection_text(args), inventory_option(args))
        result = planning.pool_level(conn, baseline.compute(conn, chosen.text, analysis_options(args)))
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


@command
def _register_whatif(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "whatif", help="before/after: the pool's model, extra flags, guest features and level if hosts are added or retired"
    )
    selection_options(parser)
    parser.add_argument("--add", default="", metavar="ITEMS", help="hosts or reference CPUs to add: ref:turin*8, cmp-new-*")
    parser.add_argument("--remove", default="", metavar="PATTERNS", help="hosts to retire: cmp-bdw-*")
    baseline_options(parser)
    format_option(parser, ("table", "json"))
    parser.set_defaults(func=_whatif)


def _whatif(args: argparse.Namespace) -> int:
    from cpudb.analysis import planning
    from cpudb.outputs import tables as output

    with reading(args) as conn:
        result = planning.whatif(conn, selection_text(args), args.add, args.remove, analysis_options(args), inventory_option(args))
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


@command
def _register_limits(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "limits", help="which CPU profiles hold the pool back: gains if each were retired, and what a target needs retired"
    )
    selection_options(parser)
    parser.add_argument("--include-planned", action="store_true", help="count planned hosts (ref:) as retirement candidates")
    parser.add_argument(
        "--goal", default="", metavar="MODEL|LEVEL|FLAG,...",
        help="reach this: a CPU model, an x86-64 level (v3, v4) and/or guest flags (avx512f,amx_tile)",
    )
    baseline_options(parser)
    format_option(parser, ("table", "json"))
    parser.set_defaults(func=_limits)


def _limits(args: argparse.Namespace) -> int:
    from cpudb.analysis import planning
    from cpudb.outputs import tables as output
    from cpudb.store import fleet

    with reading(args) as conn:
        chosen = fleet.select(conn, selection_text(args), inventory_option(args))
        result = planning.limits(conn, chosen.text, args.goal, analysis_options(args), include_planned=args.include_planned)
    if args.format == "json":
        output.print_json(result)
        return 0
    models = len(result.cpu_models)
    output.print_text(
        f"{result.selection}: {models} CPU model{'s' if models != 1 else ''}; guests can share "
        f"{result.guest_features} guest features today"
    )
    output.print_table(
        ("retire", "hosts", "variants", "guests would gain", "notable"),
        [
            (r.cpu, r.hosts, r.variants, f"{len(r.gained)}: {' '.join(r.gained)}" if r.gained else "0",
             "; ".join(f"{k}: {' '.join(v)}" for k, v in r.gained_notable) or "-")
            for r in result.retirements
        ],
        title="one CPU model at a time (every variant of it), most gain first",
    )
    output.print_table(
        ("step", "retired", "hosts left", "guest features", "gain"),
        [(i, s.retired or "(as is)", f"{s.hosts_left} + {s.planned_left} planned" if s.planned_left else s.hosts_left,
          s.guest_features, f"+{s.gained}" if s.retired else "-")
         for i, s in enumerate(result.steps)],
        title="retiring greedily, the CPU model that gains most at each step, while one gains anything",
    )
    if result.goal:
        t = result.goal
        if t.reached_now:
            output.print_text(f"goal {t.goal}: reached as the pool is")
        elif not t.reachable:
            output.print_text(f"goal {t.goal}: no CPU profile of the pool meets it")
        else:
            output.print_table(
                ("retire", "hosts", "CPU", "because"), [list(r) for r in t.retire],
                title=f"goal {t.goal}: retire these {len(t.retire)} profile(s), {t.hosts_retired} host(s); "
                f"{t.hosts_kept} host(s) stay (exact: a target is met when every remaining profile meets it)",
            )
    return 0
