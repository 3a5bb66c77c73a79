"""The migration-readiness report: one context built in one place, rendered to HTML and PDF.

The HTML is self-contained (inline CSS and SVG, no scripts, no external references); the
PDF is WeasyPrint's rendering of the same HTML with a print stylesheet, and WeasyPrint is
given a URL fetcher that refuses everything, so rendering never touches the network.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from cpudb import __version__, catalog, charts
from cpudb.baseline import Baseline, Options, RankedModel, compute, configs
from cpudb.errors import OutputError
from cpudb.families import families, family_of
from cpudb.fleet import HostRow, selected_hosts
from cpudb.levels import level_of, systems_allowed, systems_excluded
from cpudb.queries import sql
from cpudb.resources import resource_dir

PAPER_SIZES = ("A4", "Letter")
# Above this many hosts the appendix lists the first hosts of each profile, not every host,
# so the PDF stays a readable size; the complete list is one `cpudb hosts` away.
FULL_APPENDIX_LIMIT = 1000
HOSTS_PER_PROFILE_IN_APPENDIX = 10
TOP_MODELS = 10


# --- the context -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileView:
    """One CPU profile (hosts with identical flags) as the report shows it."""

    label: str  # P1, P2, ...
    hosts: int
    sample_hosts: tuple[str, ...]
    vendor: str
    cpus: tuple[str, ...]
    microarchitecture: str
    level: str
    runs_as: str
    n_flags: int
    guest_view: str  # where its guest-settable features were read from
    lost: tuple[str, ...]  # guest features it has that the recommendation does not give guests
    lost_notable: tuple[tuple[str, tuple[str, ...]], ...]  # (family, flags)

    @property
    def caption(self) -> str:
        return f"{self.label} · {short_cpu(self.cpus[0])} · {self.hosts} host{'s' if self.hosts != 1 else ''}"


@dataclass(frozen=True)
class RankingRow:
    model: str
    name_in_configs: str
    vendor: str
    edits: int
    extra: int
    disabled: tuple[str, ...]
    usable: bool
    why: str  # why it ranks below the recommendation


@dataclass(frozen=True)
class HostLine:
    host: str
    profile: str
    vendor: str
    cpu: str
    runs_as: str
    source: str
    snapshot: str
    sha256: str


@dataclass(frozen=True)
class PlanningView:
    """Section 10: what holds the pool back, and the effect of the planned reference CPUs."""

    retirements: tuple  # planning.Retirement, most gain first
    steps_chart: charts.BarChart
    whatif: object | None  # planning.WhatIf: the selection without and with its reference CPUs
    guest_features: int


@dataclass(frozen=True)
class ReportContext:
    title: str
    generated_at: str
    cpudb_version: str
    catalog_version: str
    selection: str
    options: tuple[str, ...]
    paper: str
    total_hosts: int
    verdict: str  # ready | ready with warnings | not ready
    verdict_sentence: str
    baseline: Baseline
    level: str
    level_systems: tuple[str, ...]
    level_excluded: tuple[str, ...]
    profiles: tuple[ProfileView, ...]
    matrices: tuple[charts.HeatMap, ...]
    matrix_flags: int
    matrix_hidden: int  # differing flags left out of the matrix (not guest features)
    losses: charts.BarChart
    ranking: tuple[RankingRow, ...]
    libvirt_choice: str
    configs: dict[str, str] | None
    unverifiable_msr: tuple[str, ...]
    unverifiable_vmx: int
    verify_command: str
    representatives: tuple[tuple[str, str], ...]  # (profile label, one host of it)
    hosts: tuple[HostLine, ...]
    hosts_listed_in_full: bool
    input_digest: str
    drift: object | None = None  # drift.DriftView: snapshots that changed, and outliers
    planning: PlanningView | None = None


def short_cpu(name: str) -> str:
    """'Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz' -> 'Xeon Gold 6230'; 'AMD EPYC 7742 64-Core Processor' -> 'EPYC 7742'."""
    text = re.sub(r"\((R|TM|tm)\)", "", name)
    text = re.sub(r"\s+@.*$", "", text)
    text = re.sub(r"\b(Intel|AMD|CPU|Processor|\d+-[Cc]ore)\b", "", text)
    return re.sub(r"\s+", " ", text).strip() or name


def default_name(selection: str, when: datetime) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", selection.lower()).strip("-")[:48] or "all-hosts"
    return f"migration-readiness-{slug}-{when:%Y-%m-%d}"


def build_context(
    conn: duckdb.DuckDBPyConnection,
    selection_text: str,
    options: Options = Options(),
    paper: str = "A4",
    now: datetime | None = None,
    db_label: str = "cpudb.duckdb",
) -> ReportContext:
    """Everything the templates show, for the hosts in the temp table `selected`."""
    now = now or datetime.now(timezone.utc)
    result = compute(conn, selection_text, options)
    host_rows = selected_hosts(conn)
    by_host = {r.host: r for r in host_rows}
    profile_flags = {p: frozenset(flags) for p, flags in conn.execute(sql("baseline-profile-flags")).fetchall()}
    classes = dict(conn.execute(sql("flag-class-of"), {"flags": sorted(set().union(*profile_flags.values()))}).fetchall())
    rec = result.recommended
    offered = set(rec.guest_flags) if rec else set()
    views = []
    for profile in result.profiles:
        rows = [by_host[h] for h in profile.hosts]
        flags = profile_flags[profile.profile]
        info = level_of(flags, rows[0].vendor)
        lost = sorted(f for f in flags if classes.get(f) == "guest" and f not in offered)
        notable: dict[str, list[str]] = {}
        for flag in lost:
            fam = family_of(flag)
            if fam.notable:
                notable.setdefault(fam.name, []).append(flag)
        views.append(
            ProfileView(
                label=f"P{profile.profile}",
                hosts=profile.n_hosts,
                sample_hosts=profile.hosts[:3],
                vendor=rows[0].vendor or "unknown",
                cpus=tuple(sorted({r.model_name or "unknown CPU" for r in rows})),
                microarchitecture=info.microarchitecture or "not known to archspec",
                level=info.level,
                runs_as=_runs_as(rows),
                n_flags=len(flags),
                guest_view=", ".join(sorted({r.guest_view for r in rows})),
                lost=tuple(lost),
                lost_notable=tuple((k, tuple(v)) for k, v in notable.items()),
            )
        )
    label_of = {p.profile: f"P{p.profile}" for p in result.profiles}
    matrices, shown, hidden = _matrices(result, profile_flags, classes, views)
    losses = charts.bar_chart(
        [
            (v.caption, len(v.lost), ", ".join(f"{fam} ({len(fl)})" for fam, fl in v.lost_notable))
            for v in views
        ]
    )
    level = level_of(set(rec.guest_flags), None).level if rec else "x86-64"
    verdict, sentence = _verdict(result, level)
    hosts, complete = _host_lines(result, by_host, label_of)
    the_configs = configs(conn, result)
    from cpudb import drift

    drift_view = drift.report_view(conn)
    planning = _planning(conn, selection_text, options, result)  # last: it may re-select hosts
    return ReportContext(
        title=f"Migration readiness: {result.selection}",
        generated_at=now.strftime("%Y-%m-%d %H:%M UTC"),
        cpudb_version=__version__,
        catalog_version=catalog.current_digest()[:12],
        selection=result.selection,
        options=tuple(options.describe()) + (f"--paper {paper}",),
        paper=paper,
        total_hosts=result.total_hosts,
        verdict=verdict,
        verdict_sentence=sentence,
        baseline=result,
        level=level,
        level_systems=systems_allowed(level),
        level_excluded=systems_excluded(level),
        profiles=tuple(views),
        matrices=tuple(matrices),
        matrix_flags=shown,
        matrix_hidden=hidden,
        losses=losses,
        ranking=tuple(_ranking_rows(result)),
        libvirt_choice=_libvirt_choice(result),
        configs=the_configs,
        unverifiable_msr=tuple(f for f in (rec.unverifiable if rec else ()) if not f.startswith("vmx-")),
        unverifiable_vmx=sum(1 for f in (rec.unverifiable if rec else ()) if f.startswith("vmx-")),
        verify_command=_verify_command(result, db_label),
        representatives=tuple((v.label, v.sample_hosts[0]) for v in views),
        hosts=tuple(hosts),
        hosts_listed_in_full=complete,
        input_digest=_input_digest(host_rows),
        drift=drift_view,
        planning=planning,
    )


def _planning(conn, selection_text: str, options: Options, result: Baseline) -> PlanningView | None:
    """Limits for pools of several profiles; before/after when the selection plans reference CPUs."""
    from cpudb import planning

    if len(result.profiles) < 2:
        return None
    found = planning.limits(conn, selection_text, options=options, result=result)
    labels = ["as it is"] + [f"without {s.retired} ({s.hosts_left} hosts left)" for s in found.steps[1:]]
    chart = charts.bar_chart([(label, s.guest_features, "") for label, s in zip(labels, found.steps)])
    items = [i for i in re.split(r"[\s,]+", selection_text.strip()) if i]
    planned = [i for i in items if i.startswith("ref:")]
    whatif = None
    if planned:
        real = " ".join(i for i in items if not i.startswith("ref:"))
        whatif = planning.whatif(conn, real, add=" ".join(planned), options=options)
    return PlanningView(found.retirements[:8], chart, whatif, found.guest_features)


def _runs_as(rows: list[HostRow]) -> str:
    kinds = {f"guest ({r.hypervisor_vendor})" if r.is_guest and r.hypervisor_vendor else ("guest" if r.is_guest else "bare metal") for r in rows}
    if any(r.kind == "reference" for r in rows):
        return "reference CPU"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _matrices(result, profile_flags, classes, views) -> tuple[list[charts.HeatMap], int, int]:
    """Guest flags that differ between profiles, grouped by family; other differences only counted."""
    every = frozenset.intersection(*profile_flags.values()) if profile_flags else frozenset()
    differing = frozenset().union(*profile_flags.values()) - every
    shown = sorted(f for f in differing if classes.get(f) in ("guest", "unmigratable"))
    grouped: dict[str, list[str]] = {}
    for flag in shown:
        grouped.setdefault(family_of(flag).name, []).append(flag)
    order = [f.name for f in families()]
    columns = [(name, grouped[name]) for name in order if name in grouped]
    rows = [(v.caption, profile_flags[p.profile]) for v, p in zip(views, result.profiles)]
    return (charts.heat_maps(rows, columns) if columns else []), len(shown), len(differing) - len(shown)


def _verdict(result: Baseline, level: str) -> tuple[str, str]:
    rec = result.recommended
    if rec is None:
        return "not ready", (
            f"No QEMU CPU model is compatible with all {result.total_hosts} selected hosts; "
            "see the near misses and warnings below."
        )
    extra = f" plus {len(rec.extra_flags)} extra flag(s)" if rec.extra_flags else ""
    sentence = (
        f"All {result.total_hosts} hosts can run guests with {rec.model}{extra}; guests then see an "
        f"{level} CPU."
    )
    if result.risks:
        return "ready with warnings", sentence + f" Read the {len(result.risks)} warning(s) before the change."
    return "ready", sentence


def _ranked(result: Baseline, model: str) -> RankedModel:
    return next(m for m in result.ranking if m.model == model)


def _why(model: RankedModel, best: RankedModel | None) -> str:
    if not model.usable:
        if model.unnameable:
            return f"cannot name {', '.join(model.unnameable)} to turn off"
        lacking = ", ".join(f"{f} ({model.missing_counts[f]} host{'s' if model.missing_counts[f] != 1 else ''})"
                            for f in list(model.missing)[:4])
        more = f" and {len(model.missing) - 4} more" if len(model.missing) > 4 else ""
        return f"the target's Nova checks the bare model on each host, which lacks {lacking}{more}"
    if best is None or model.model == best.model:
        return "recommended"
    if model.edits > best.edits:
        return f"{model.edits - best.edits} more edit(s)"
    if best.vendor_match and not model.vendor_match:
        return "same edits, not the pool's vendor"
    if model.age < best.age:
        return "same edits, older"
    return "same edits, generic" if model.generic else "same edits"


def _row(model: RankedModel, best: RankedModel | None) -> RankingRow:
    return RankingRow(
        model=model.model,
        name_in_configs=model.alias,
        vendor=model.vendor,
        edits=model.edits,
        extra=len(model.extra_flags),
        disabled=model.disabled_flags,
        usable=model.usable,
        why=_why(model, best),
    )


def _ranking_rows(result: Baseline) -> list[RankingRow]:
    best = _ranked(result, result.recommended.model) if result.recommended else None
    rows = [_row(m, best) for m in result.ranking if m.usable][:TOP_MODELS]
    if not rows:
        rows = [_row(m, best) for m in result.ranking[:TOP_MODELS]]
    return rows


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


def _verify_command(result: Baseline, db_label: str) -> str:
    parts = ["cpudb", "verify", "--guest", "test-guest.lscpu", "--db", db_label]
    parts += list(result.options.describe())
    if result.selection != "all hosts":
        parts.append(f"'{result.selection}'")
    return " ".join(parts)


def _host_lines(result: Baseline, by_host: dict[str, HostRow], label_of: dict[int, str]) -> tuple[list[HostLine], bool]:
    complete = len(by_host) <= FULL_APPENDIX_LIMIT
    lines = []
    for profile in result.profiles:
        hosts = profile.hosts if complete else profile.hosts[:HOSTS_PER_PROFILE_IN_APPENDIX]
        for host in hosts:
            row = by_host[host]
            lines.append(
                HostLine(
                    host=host,
                    profile=label_of[profile.profile],
                    vendor=row.vendor or "unknown",
                    cpu=row.model_name or "unknown CPU",
                    runs_as=_runs_as([row]),
                    source=row.source_format + (f", kernel {row.kernel}" if row.kernel else "")
                    + (f"; guest view: {row.guest_source}" if row.guest_source else ""),
                    snapshot=row.snapshot_at.strftime("%Y-%m-%d %H:%M"),
                    sha256=row.sha256,
                )
            )
    return lines, complete


def _input_digest(rows: list[HostRow]) -> str:
    """One digest of every input dump (host and sha256), to tell two reports' inputs apart."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.host):
        digest.update(f"{row.host} {row.sha256}\n".encode())
    return digest.hexdigest()


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
    env.filters["percent"] = lambda value: f"{value:.0%}"
    return env


def render_html(context: ReportContext) -> str:
    return environment().get_template("report.html.j2").render(report=context)


def render_pdf(html: str) -> bytes:
    """WeasyPrint's PDF of the report HTML, fetching nothing from anywhere."""
    import weasyprint

    return weasyprint.HTML(string=html, base_url=None, url_fetcher=_no_fetching()).write_pdf()


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
    """The files `-o` asks for: a .html or .pdf file, or both in a folder."""
    if target.suffix.lower() in (".html", ".pdf"):
        return [target]
    if target.suffix:
        raise OutputError(f"{target}: the report is written as .html or .pdf, or into a folder")
    return [target / f"{name}.html", target / f"{name}.pdf"]


def write(context: ReportContext, paths: list[Path]) -> list[Path]:
    """Render and write atomically (temporary file, then rename)."""
    from cpudb.report_io import write_atomically

    html = render_html(context)
    for path in paths:
        data = html.encode("utf-8") if path.suffix.lower() == ".html" else render_pdf(html)
        write_atomically(path, data)
    return paths
