"""The migration-readiness report: one context built in one place, rendered to HTML and PDF.

The HTML is self-contained (inline CSS and SVG, no scripts, no external references); the
PDF is WeasyPrint's rendering of the same HTML with a print stylesheet and the configuration
files attached, and WeasyPrint is given a URL fetcher that refuses everything, so rendering
never touches the network. A report run writes its HTML, PDF and configuration files
together or not at all (cpudb.files).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from cpudb import __version__
from cpudb.analysis.baseline import Baseline, Options, RankedModel, compute
from cpudb.catalog import dictionary as catalog
from cpudb.catalog.families import families, family_of, notable_groups
from cpudb.catalog.levels import level_of, systems_allowed, systems_excluded
from cpudb.catalog.signatures import describe
from cpudb.errors import OutputError
from cpudb.outputs import charts
from cpudb.outputs.emit import configs, shell_word
from cpudb.queries import sql
from cpudb.resources import resource_dir
from cpudb.store.fleet import HostRow, selected_hosts
from cpudb.outputs.report_views import (  # noqa: F401 - the views are read from here too
    ConfigFile, CpuModelView, PlanningView, RankingRow, ReportContext, VariantView, _count,
)

PAPER_SIZES = ("A4", "Letter")
# Above this many hosts the appendix lists the first hosts of each profile, not every host,
# so the PDF stays a readable size; the complete list is one `cpudb hosts` away.
FULL_APPENDIX_LIMIT = 10_000
HOSTS_PER_PROFILE_IN_APPENDIX = 10
TOP_MODELS = 10
RETIRE_ROWS = 12
# Text width of a configuration block in the PDF (A4 less margins and padding), in points.
CONFIG_WIDTH_PT = 490
CONFIG_FONT_PT = (8.5, 4.5)  # the usual size, and the smallest a long unbroken line is set in
# The configuration files written beside the report and attached to the PDF.
CONFIG_FILES = (
    ("nova", "Nova (nova.conf, every compute host)", "nova.conf"),
    ("libvirt_xml", "libvirt domain XML", "domain-cpu.xml"),
    ("qemu", "QEMU command line", "qemu-cpu.txt"),
    ("proxmox", "Proxmox VE (cpu-models.conf)", "cpu-models.conf"),
    ("kubevirt", "KubeVirt (VirtualMachine spec)", "kubevirt-cpu.yaml"),
)


# --- the context -----------------------------------------------------------------------------


def default_name(selection: str, when: datetime) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", selection.lower()).strip("-")[:48] or "all-hosts"
    return f"migration-readiness-{slug}-{when:%Y-%m-%d}"


def build_context(
    conn: duckdb.DuckDBPyConnection,
    selection_text: str,
    options: Options = Options(),
    paper: str = "A4",
    now: datetime | None = None,
    inventory: Path | None = None,
) -> ReportContext:
    """Everything the templates show, for the hosts in the temp table `selected`."""
    now = now or datetime.now(timezone.utc)
    result = compute(conn, selection_text, options)
    host_rows = selected_hosts(conn)
    by_host = {r.host: r for r in host_rows}
    profile_flags = {p: frozenset(flags) for p, flags in conn.execute(sql("baseline-profile-flags")).fetchall()}
    every_flag = sorted(set().union(*profile_flags.values())) if profile_flags else []
    classes = dict(conn.execute(sql("flag-class-of"), {"flags": every_flag}).fetchall())
    rec = result.recommended
    offered = set(rec.guest_flags) if rec else set()
    models = _cpu_models(result, by_host, profile_flags, classes, offered)
    matrices, shown, hidden = _matrices(result, profile_flags, classes, models)
    losses = charts.bar_chart(
        [(m.caption, len(m.lost), ", ".join(f"{fam} ({len(fl)})" for fam, fl in m.lost_notable)) for m in models]
    )
    level = level_of(set(rec.guest_flags), None).level if rec else "x86-64"
    verdict, sentence = _verdict(result)
    appendix, listed, complete = _appendix(result, by_host)
    the_configs = configs(conn, result)
    from cpudb.analysis import drift

    drift_view = drift.report_view(conn)
    digest, covers = _input_digest(host_rows, result, options, inventory, selection_text)
    planning = _planning(conn, selection_text, options, result)  # last: it may re-select hosts
    generated = now.strftime("%Y-%m-%d %H:%M UTC")
    return ReportContext(
        title=f"Migration readiness: {result.selection}",
        generated_at=generated,
        generated_date=now.strftime("%Y-%m-%d"),
        cpudb_version=__version__,
        catalog_version=catalog.current_digest()[:12],
        selection=result.selection,
        options=tuple(options.describe()) + (f"--paper {paper}",),
        paper=paper,
        total_hosts=result.total_hosts,
        real_hosts=result.real_hosts,
        planned=result.planned,
        verdict=verdict,
        verdict_sentence=sentence,
        baseline=result,
        level=level,
        level_systems=systems_allowed(level),
        level_excluded=systems_excluded(level),
        cpu_models=tuple(models),
        constant_facts=_constant_facts(models),
        vary_runs_as=len({v.runs_as for m in models for v in m.variants}) > 1,
        vary_guest_view=len({v.guest_view for m in models for v in m.variants}) > 1,
        matrices=tuple(matrices),
        matrix_flags=shown,
        matrix_hidden=hidden,
        losses=losses,
        ranking=tuple(_ranking_rows(result)),
        libvirt_choice=_libvirt_choice(result),
        configs=_config_files(the_configs),
        findings=tuple(sorted(result.findings, key=lambda f: ("blocker", "risk", "note").index(f.severity))),
        unverifiable_msr=tuple(f for f in (rec.unverifiable if rec else ()) if not f.startswith("vmx-")),
        unverifiable_vmx=sum(1 for f in (rec.unverifiable if rec else ()) if f.startswith("vmx-")),
        verify_command=_verify_command(result),
        representatives=tuple((m.label, m.variants[0].sample_hosts[0]) for m in models if not m.planned),
        appendix=appendix,
        hosts_listed=listed,
        hosts_listed_in_full=complete,
        input_digest=digest,
        digest_covers=covers,
        footer=f"{result.selection} · {generated} · inputs {digest[:12]}",
        drift=drift_view,
        planning=planning,
    )


def _cpu_models(result: Baseline, by_host: dict[str, HostRow], profile_flags, classes, offered) -> list[CpuModelView]:
    """The selection's CPU models (name and stepping), each with its variants, biggest first."""
    from cpudb.analysis.planning import cpu_models

    views = []
    for label, (model, ids) in cpu_models(result, by_host).items():
        profiles = [p for p in result.profiles if p.profile in ids]
        main = max(profiles, key=lambda p: (p.n_hosts, -p.profile))
        main_flags = profile_flags[main.profile]
        variants = []
        for p in sorted(profiles, key=lambda p: (p is not main, -p.n_hosts, p.profile)):
            rows = [by_host[h] for h in p.hosts]
            flags = profile_flags[p.profile]
            lacks, adds = sorted(main_flags - flags), sorted(flags - main_flags)
            differs = "; ".join(part for part in (f"lacks {' '.join(lacks)}" if lacks else "",
                                                  f"has {' '.join(adds)} too" if adds else "") if part)
            variants.append(VariantView(
                label=f"P{p.profile}", hosts=p.n_hosts, sample_hosts=p.hosts[:3], differs=differs,
                guest_view=", ".join(sorted({r.guest_view for r in rows})), runs_as=_runs_as(rows), n_flags=len(flags),
            ))
        first = by_host[main.hosts[0]]
        guest_flags = [frozenset(f for f in profile_flags[p.profile] if classes.get(f) == "guest") for p in profiles]
        lost = sorted(frozenset.intersection(*guest_flags) - offered)
        info = level_of(main_flags, first.vendor)
        views.append(CpuModelView(
            label=label, cpu=first.model_name or "unknown CPU", vendor=first.vendor or "unknown",
            generation=describe(first.vendor, first.family, first.model, first.stepping, info.microarchitecture),
            level=info.level, hosts=model.hosts, planned=model.planned, variants=tuple(variants),
            lost=tuple(lost), lost_notable=notable_groups(lost),
        ))
    return sorted(views, key=lambda v: (v.planned, v.vendor, -v.hosts, v.label))


def _constant_facts(models: list[CpuModelView]) -> tuple[str, ...]:
    """What every existing host shares, said once instead of a column of one value."""
    real = [v for m in models if not m.planned for v in m.variants]
    facts = []
    for attribute, say in (("runs_as", "every host runs as {}"), ("guest_view", "every host's guest view is its {}")):
        values = {getattr(v, attribute) for v in real}
        if len(values) == 1:
            facts.append(say.format(values.pop()))
    return tuple(facts)


def _runs_as(rows: list[HostRow]) -> str:
    if any(r.kind == "reference" for r in rows):
        return "reference CPU (planned)"
    kinds = {f"guest ({r.hypervisor_vendor})" if r.is_guest and r.hypervisor_vendor else ("guest" if r.is_guest else "bare metal") for r in rows}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _matrices(result, profile_flags, classes, models) -> tuple[list[charts.HeatMap], int, int]:
    """Guest flags that differ between profiles, grouped by family; other differences only counted."""
    every = frozenset.intersection(*profile_flags.values()) if profile_flags else frozenset()
    differing = frozenset().union(*profile_flags.values()) - every
    shown = sorted(f for f in differing if classes.get(f) in ("guest", "unmigratable"))
    grouped: dict[str, list[str]] = {}
    for flag in shown:
        grouped.setdefault(family_of(flag).name, []).append(flag)
    columns = [(f.name, grouped[f.name]) for f in families() if f.name in grouped]
    rows = []
    for model in models:
        for v in model.variants:
            rows.append((f"{v.label} · {model.label} · {_count(v.hosts, 'host')}", profile_flags[int(v.label[1:])]))
    return (charts.heat_maps(rows, columns) if columns else []), len(shown), len(differing) - len(shown)


def _verdict(result: Baseline) -> tuple[str, str]:
    rec = result.recommended
    guest = result.guest_features
    planned = ""
    if result.planned:
        refs = ", ".join(f"{name} ×{n}" for name, n in result.planned)
        planned = (f" {_count(result.planned_hosts, 'planned host')} ({refs}) are part of the decision but not counted "
                   "as ready: they do not exist yet.")
    if rec is None or result.blockers:
        first = next(f for f in result.findings if f.severity == "blocker")
        return "not ready", f"Not ready: {first.text}{'; ' + first.action if first.action else ''}." + planned
    hosts = ("The one host" if result.real_hosts == 1 else f"All {result.real_hosts:,} hosts")
    sentence = (f"{hosts} can run guests with {rec.model} and {_count(rec.edits, 'edit')}; "
                f"{guest.headline}." + planned)
    if result.risks:
        risks = len(result.risks)
        return "ready with warnings", sentence + f" Read the {_count(risks, 'warning')} before the change."
    return "ready", sentence


def _ranked(result: Baseline, model: str) -> RankedModel:
    return next(m for m in result.ranking if m.model == model)


def _why(model: RankedModel, best: RankedModel | None) -> str:
    if not model.usable:
        if model.unnameable:
            return f"cannot name {', '.join(model.unnameable)} to turn off"
        lacking = ", ".join(f"{f} ({_count(model.missing_counts[f], 'host')})" for f in list(model.missing)[:4])
        more = f" and {len(model.missing) - 4} more" if len(model.missing) > 4 else ""
        return f"the target's Nova checks the bare model on each host, which lacks {lacking}{more}"
    if best is None or model.model == best.model:
        return "recommended"
    if model.edits > best.edits:
        return f"{_count(model.edits - best.edits, 'more edit')}"
    if best.vendor_match and not model.vendor_match:
        return "same edits, not the pool's vendor"
    if model.age < best.age:
        return "same edits, older"
    return "same edits, generic" if model.generic else "same edits"


def _row(model: RankedModel, best: RankedModel | None) -> RankingRow:
    return RankingRow(
        model=model.model, name_in_configs=model.alias, vendor=model.vendor, edits=model.edits,
        extra=len(model.extra_flags), disabled=model.disabled_flags, usable=model.usable, why=_why(model, best),
    )


def _ranking_rows(result: Baseline) -> list[RankingRow]:
    best = _ranked(result, result.recommended.model) if result.recommended else None
    rows = [_row(m, best) for m in result.ranking if m.usable][:TOP_MODELS]
    return rows or [_row(m, best) for m in result.ranking[:TOP_MODELS]]


def _libvirt_score(model: RankedModel) -> int:
    """libvirt's baseline cost: +1 per added feature, k+1 for the k-th disabled one."""
    disabled = len(model.missing) + len(model.nested_disabled)
    return len(model.extra_flags) + sum(k + 1 for k in range(1, disabled + 1))


def _libvirt_choice(result: Baseline) -> str:
    """The model libvirt's own baseline would likely pick: lowest cost among same-vendor candidates."""
    if len({p.vendor_group for p in result.profiles}) > 1:
        return "nothing: it refuses pools of mixed vendors ('CPU vendors do not match')"
    candidates = [m for m in result.ranking if m.vendor_match and m.usable]
    if not candidates:
        return "no model of the hosts' vendor"
    best = min(candidates, key=lambda m: (_libvirt_score(m), -m.age))
    disabled = f", disabling {' '.join(best.missing)}" if best.missing else ""
    return f"{best.model}{disabled} (cost {_libvirt_score(best)}: +1 per added feature, k+1 for the k-th disabled one)"


def _config_files(texts: dict[str, str] | None) -> tuple[ConfigFile, ...]:
    if not texts:
        return ()
    found = []
    usual, smallest = CONFIG_FONT_PT
    for key, title, filename in CONFIG_FILES:
        text = texts[key]
        longest = max(len(line) for line in text.splitlines())
        size = max(smallest, min(usual, CONFIG_WIDTH_PT / (0.602 * max(longest, 1))))
        found.append(ConfigFile(key, title, filename, text, round(size, 2)))
    return tuple(found)


def _verify_command(result: Baseline) -> str:
    """The check of step 9: a guest's flags against exactly the configured CPU (no database needed)."""
    rec = result.recommended
    if rec is None:
        return ""
    lines = [f"cpudb verify --guest test-guest.lscpu --model {rec.model}"]
    for option, flags in (("--extra", rec.extra_flags), ("--disable", rec.disabled_flags)):
        if flags:
            lines[-1] += " \\"
            lines += shell_word(f"  {option} ", flags)
    return "\n".join(lines)


def _appendix(result: Baseline, by_host: dict[str, HostRow]) -> tuple[str, int, bool]:
    """Every existing host with its dump, as fixed-width text lines (planned hosts apart, no digest)."""
    real = [r for r in by_host.values() if r.kind != "reference"]
    complete = len(real) <= FULL_APPENDIX_LIMIT
    label = {h: f"P{p.profile}" for p in result.profiles for h in p.hosts}
    shown: list[HostRow] = []
    for profile in result.profiles:
        hosts = [by_host[h] for h in profile.hosts if by_host[h].kind != "reference"]
        shown += hosts if complete else hosts[:HOSTS_PER_PROFILE_IN_APPENDIX]
    width = max((len(r.host) for r in shown), default=4)
    lines = [f"{'host':<{width}}  prof  collected         dump            sha256 of the dump"]
    for row in shown:
        when = (row.collected_at.strftime("%Y-%m-%d %H:%M") if row.collected_at
                else "ingested " + row.snapshot_at.strftime("%m-%d"))
        lines.append(f"{row.host:<{width}}  {label[row.host]:<5} {when:<17} {row.source_format[:15]:<15} {row.sha256}")
    for name, count in result.planned:
        lines.append(f"{name:<{width}}  {label.get(name, '-'):<5} planned: {_count(count, 'host')} of a reference CPU, no dump")
    return "\n".join(lines), len(shown), complete


def _input_digest(rows: list[HostRow], result: Baseline, options: Options, inventory: Path | None,
                  selection: str) -> tuple[str, tuple[str, ...]]:
    """One digest of everything the report follows from: every dump, the catalog, the options, the
    target and, when the selection names groups, the inventory."""
    digest = hashlib.sha256()
    covers = [f"{len([r for r in rows if r.kind != 'reference'])} dumps (host and sha256)"]
    for row in sorted(rows, key=lambda r: r.host):
        digest.update(f"dump {row.host} {row.sha256}\n".encode())
    digest.update(f"catalog {catalog.current_digest()}\ncpudb {__version__}\n".encode())
    covers.append(f"catalog {catalog.current_digest()[:12]}")
    digest.update(f"selection {selection}\noptions {' '.join(options.describe())}\n".encode())
    covers.append("selection and options")
    digest.update(("target " + json.dumps(result.target.as_json(), sort_keys=True) + "\n").encode())
    covers.append(f"target {result.target.name}")
    if "@" in selection:
        from cpudb.store.fleet import inventory_path

        path = inventory or inventory_path()
        try:
            digest.update(b"inventory " + hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
            covers.append(f"inventory {path.name}")
        except OSError:
            covers.append("inventory (unreadable)")
    return digest.hexdigest(), tuple(covers)


def _planning(conn, selection_text: str, options: Options, result: Baseline) -> PlanningView | None:
    """Limits for pools of several CPU models; before/after when the selection plans reference CPUs."""
    from cpudb.analysis import planning

    found = planning.limits(conn, selection_text, options=options, result=result)
    if len(found.cpu_models) < 2:
        return None
    labels = ["as it is"] + [f"without {s.retired} ({_count(s.hosts_left, 'host')} left"
                             + (f", {s.planned_left:,} planned)" if s.planned_left else ")") for s in found.steps[1:]]
    chart = charts.bar_chart([(label, s.guest_features, f"+{s.gained}" if s.retired else "")
                              for label, s in zip(labels, found.steps)])
    items = [i for i in re.split(r"[\s,]+", selection_text.strip()) if i]
    planned = [i for i in items if i.startswith("ref:")]
    whatif = None
    if planned:
        real = " ".join(i for i in items if not i.startswith("ref:"))
        whatif = planning.whatif(conn, real, add=" ".join(planned), options=options)
    return PlanningView(
        cpu_models=len(found.cpu_models), guest_features=found.guest_features,
        retirements=found.retirements[:RETIRE_ROWS], more_retirements=max(0, len(found.retirements) - RETIRE_ROWS),
        steps_chart=chart, steps=len(found.steps) - 1, whatif=whatif,
    )


# --- rendering -------------------------------------------------------------------------------


def environment():
    """The one Jinja environment: autoescaping on, undefined names are errors."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(resource_dir("reports/templates"))),
        autoescape=select_autoescape(enabled_extensions=("html", "svg", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = _count
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def render_html(context: ReportContext) -> str:
    return environment().get_template("report.html.j2").render(report=context)


def render_pdf(html: str, context: ReportContext | None = None) -> bytes:
    """WeasyPrint's PDF of the report HTML with the configuration files attached, fetching nothing."""
    import weasyprint

    attachments = [
        weasyprint.Attachment(string=config.text, name=config.filename, description=config.title)
        for config in (context.configs if context else ())
    ]
    return weasyprint.HTML(string=html, base_url=None, url_fetcher=_no_fetching()).write_pdf(attachments=attachments)


def _no_fetching():
    """A URL fetcher that refuses every URL (reports are self-contained; no network at run time)."""
    import weasyprint.urls

    def refuse(url: str, *args, **kwargs):
        raise ValueError(f"cpudb reports fetch no URL ({url[:80]})")

    if hasattr(weasyprint.urls, "URLFetcher"):  # WeasyPrint 68 and later take an object

        class Refuse(weasyprint.urls.URLFetcher):
            def fetch(self, url, headers=None):
                return refuse(url)

        return Refuse()
    return refuse


def output_paths(target: Path, name: str) -> list[Path]:
    """The files `-o` asks for: a .html or .pdf file, or both and the configuration folder in a folder."""
    if target.suffix.lower() in (".html", ".pdf"):
        return [target]
    if target.suffix:
        raise OutputError(f"{target}: the report is written as .html or .pdf, or into a folder")
    return [target / f"{name}.html", target / f"{name}.pdf", target / name]


def write(context: ReportContext, paths: list[Path]) -> list[Path]:
    """Render everything first, then replace the outputs together (files.replace_together)."""
    from cpudb.files import replace_together

    html = render_html(context)
    outputs: dict[Path, bytes | dict[str, bytes]] = {}
    for path in paths:
        if path.suffix.lower() == ".html":
            outputs[path] = html.encode("utf-8")
        elif path.suffix.lower() == ".pdf":
            outputs[path] = render_pdf(html, context)
        else:  # the configuration folder
            outputs[path] = {config.filename: config.text.encode("utf-8") for config in context.configs}
    replace_together(outputs)
    return paths
