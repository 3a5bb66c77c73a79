"""What the report's templates read: one frozen view per section, built by report.build_context."""

from __future__ import annotations

from dataclasses import dataclass

from cpudb.analysis.baseline import Baseline
from cpudb.analysis.risks import Finding
from cpudb.outputs import charts


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


@dataclass(frozen=True)
class VariantView:
    """One CPU profile (hosts with identical flags) of a CPU model."""

    label: str  # P1, P2, ...
    hosts: int
    sample_hosts: tuple[str, ...]
    differs: str  # how it differs from the CPU model's main variant ("" for that one)
    guest_view: str
    runs_as: str
    n_flags: int


@dataclass(frozen=True)
class CpuModelView:
    """A CPU model and stepping of the selection, with its variants."""

    label: str  # "Xeon Gold 6230, stepping 7"
    cpu: str  # the full model name
    vendor: str
    generation: str  # from the CPUID signature
    level: str
    hosts: int
    planned: bool
    variants: tuple[VariantView, ...]
    lost: tuple[str, ...]  # guest features every variant has that guests will not see
    lost_notable: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def caption(self) -> str:
        return f"{self.label} · {_count(self.hosts, 'host')}" + (" (planned)" if self.planned else "")


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
class ConfigFile:
    key: str  # the JSON key of baseline --format json
    title: str
    filename: str  # written beside the report and attached to the PDF
    text: str
    font_pt: float  # set so that the longest line, which the format cannot continue, fits the page


@dataclass(frozen=True)
class PlanningView:
    """What holds the pool back, by CPU model, and the effect of the planned reference CPUs."""

    cpu_models: int
    guest_features: int
    retirements: tuple  # planning.Retirement, most gain first (at most RETIRE_ROWS)
    more_retirements: int  # rows left out of the table (every one is in `cpudb limits`)
    steps_chart: charts.BarChart
    steps: int
    whatif: object | None  # planning.WhatIf: the selection without and with its reference CPUs


@dataclass(frozen=True)
class ReportContext:
    title: str
    generated_at: str
    generated_date: str
    cpudb_version: str
    catalog_version: str
    selection: str
    options: tuple[str, ...]
    paper: str
    total_hosts: int
    real_hosts: int
    planned: tuple[tuple[str, int], ...]  # reference CPUs (ref:) and the hosts each stands for
    verdict: str  # ready | ready with warnings | not ready
    verdict_sentence: str
    baseline: Baseline
    level: str
    level_systems: tuple[str, ...]
    level_excluded: tuple[str, ...]
    cpu_models: tuple[CpuModelView, ...]
    constant_facts: tuple[str, ...]  # what holds for every host (said once, not in a column)
    vary_runs_as: bool  # hosts differ in where the dump was taken (bare metal, guest)
    vary_guest_view: bool  # hosts differ in where their guest view came from
    matrices: tuple[charts.HeatMap, ...]
    matrix_flags: int
    matrix_hidden: int  # differing flags left out of the matrix (not guest features)
    losses: charts.BarChart
    ranking: tuple[RankingRow, ...]
    libvirt_choice: str
    configs: tuple[ConfigFile, ...]
    findings: tuple[Finding, ...]
    unverifiable_msr: tuple[str, ...]
    unverifiable_vmx: int
    verify_command: str
    representatives: tuple[tuple[str, str], ...]  # (CPU model, one existing host of it)
    appendix: str  # one line per host: compact text, not a table (a 1,000-host PDF in seconds)
    hosts_listed: int
    hosts_listed_in_full: bool
    input_digest: str
    digest_covers: tuple[str, ...]
    footer: str
    drift: object | None = None  # drift.DriftView: snapshots that changed
    planning: PlanningView | None = None
