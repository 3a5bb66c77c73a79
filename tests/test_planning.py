"""Refresh planning: reference CPUs and their evidence, what-if, limits, x86-64 levels."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, REFERENCE, ROOT, SAMPLE_FLEET, requires_reference
from cpudb.analysis import planning
from cpudb.analysis.baseline import Options, compute
from cpudb.build.references import build_references, read_references
from cpudb.catalog import dictionary as catalog
from cpudb.cli.main import main
from cpudb.errors import CpudbError
from cpudb.inputs.parse import parse_file
from cpudb.store import fleet

REFERENCES = {r["id"]: r for r in read_references(ROOT / "data" / "reference_cpus" / "references.json")}


def test_every_generation_of_the_issue_is_listed_and_siena_is_missing():
    wanted = {
        "sandybridge-ep", "ivybridge-ep", "haswell-ep", "broadwell-ep", "skylake-sp", "cascadelake", "cooperlake",
        "icelake-sp", "sapphirerapids", "emeraldrapids", "graniterapids", "sierraforest", "naples", "rome", "milan",
        "genoa", "bergamo", "siena", "turin", "hygon",
    }
    assert set(REFERENCES) == wanted
    assert [r for r in REFERENCES if REFERENCES[r]["missing"]] == ["siena"]
    assert REFERENCES["siena"]["flags"] == [] and REFERENCES["siena"]["evidence"] == []
    for item in REFERENCES.values():
        assert item["name"] and item["launched"] >= 2012 and item["microarchitecture"]


@pytest.mark.parametrize("gid", sorted(g for g, r in REFERENCES.items() if r["evidence"] and r["evidence"][0].startswith("fixture:")))
def test_a_dump_based_reference_is_its_evidence_plus_what_is_inferred(gid):
    item = REFERENCES[gid]
    primary = parse_file(FIXTURES / item["evidence"][0].removeprefix("fixture:"))
    assert set(item["flags"]) == (primary.flags | set(item["inferred"])) - set(item["removed"])
    assert (item["vendor"], item["family"], item["model"]) == (primary.vendor, primary.family, primary.model)


@requires_reference()
def test_decoded_cpuid_profiles_agree_with_real_dumps_except_where_explained():
    built = {r["id"]: r for r in build_references(
        ROOT / "data", REFERENCE, REFERENCE.parent / "fixtures" / "lscpu", catalog.current()
    )}
    assert built == REFERENCES  # every difference between evidence sources has a recorded reason
    milan = {d["flag"]: d["reason"] for d in built["milan"]["differences"]}
    assert set(milan) == {"erms", "fsrm", "shstk"}
    assert "BIOS hides ERMS" in milan["erms"]
    assert "pku" in {d["flag"] for d in built["skylake-sp"]["differences"]}
    assert {"erms", "fsrm"} <= set(built["turin"]["inferred"])


def test_references_are_hosts_of_kind_reference(fleet_conn):
    chosen = fleet.select(fleet_conn, "ref:genoa*3 ref:bergamo")
    rows = fleet.selected_hosts(fleet_conn)
    assert chosen.hosts == ()
    assert [(r.host, r.weight, r.kind) for r in rows] == [("ref:bergamo", 1, "reference"), ("ref:genoa", 3, "reference")]
    assert {"avx512f", "amd_ssbd"} <= {f for f in REFERENCES["genoa"]["flags"]}


# --- the exact results of the issue ----------------------------------------------------------


def test_milan_pool_plus_turin_keeps_the_milan_class_model(fleet_conn):
    result = planning.whatif(fleet_conn, "ref:milan*10", add="ref:turin*4")
    assert result.before.model.startswith("EPYC-Milan-")
    assert result.after.model == result.before.model  # adding newer hosts never raises the baseline
    assert result.lost == () and result.gained == ()
    # The sample fleet's own Milan hides ERMS and FSRM: EPYC-Milan without them, before and after.
    real = planning.whatif(fleet_conn, "cmp-milan-01", add="ref:turin*4")
    assert real.before.model == real.after.model == "EPYC-Milan-v1"


def test_limits_names_broadwell_for_the_avx512_family(fleet_conn):
    fleet.select(fleet_conn, "cmp-bdw-01 cmp-skx-01 cmp-icx-01")
    found = planning.limits(fleet_conn, "cmp-bdw-01 cmp-skx-01 cmp-icx-01")
    first = found.retirements[0]
    assert (first.cpu, first.hosts, first.variants) == ("Xeon E5-2690 v4, stepping 1", 1, 1)
    assert dict(first.gained_notable)["AVX-512"] == ("avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl")
    assert len(first.gained) > max(len(r.gained) for r in found.retirements[1:])
    assert [s.guest_features for s in found.steps] == sorted(s.guest_features for s in found.steps)


def test_limits_goal_retires_exactly_the_profiles_that_fail_it(fleet_conn):
    fleet.select(fleet_conn, "")
    found = planning.limits(fleet_conn, "", goal="x86-64-v4")
    retired = {cpu for _, _, cpu, _ in found.goal.retire}
    assert retired == {
        "AMD EPYC 7451 24-Core Processor", "AMD EPYC 7742 64-Core Processor", "AMD EPYC 7763 64-Core Processor",
        "Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz",
    }
    assert (found.goal.hosts_retired, found.goal.hosts_kept) == (4, 6)
    fleet.select(fleet_conn, "@cascadelake")
    model = planning.limits(fleet_conn, "@cascadelake", goal="Cascadelake-Server-v2", options=Options(target="rhel-9")).goal
    assert [(p, reason) for p, _, _, reason in model.retire] == [("P2", "Cascadelake-Server-v2 needs hle rtm")]


def test_limits_goal_must_name_something(fleet_conn):
    fleet.select(fleet_conn, "")
    with pytest.raises(CpudbError, match="goal 'warp9' is not a CPU model, an x86-64 level"):
        planning.limits(fleet_conn, "", goal="warp9")


def test_a_mixed_intel_and_amd_pool_reports_its_level(fleet_conn):
    fleet.select(fleet_conn, "cmp-skx-01 cmp-milan-01")
    level = planning.pool_level(fleet_conn, compute(fleet_conn, "cmp-skx-01 cmp-milan-01"))
    assert [(p.cpu, p.level, p.microarchitecture) for p in level.profiles] == [
        ("AMD EPYC 7763 64-Core Processor", "x86-64-v3", "zen3"),
        ("Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz", "x86-64-v4", "skylake_avx512"),
    ]
    assert (level.common_level, level.guest_level) == ("x86-64-v3", "x86-64-v3")
    assert any(s.startswith("RHEL 10") for s in level.systems_allowed)
    assert level.held_back_by == ("P1",)


def test_level_cli_json(capsys):
    assert main(["level", "--dumps", str(SAMPLE_FLEET), "--format", "json", "@legacy"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["common_level"] == "x86-64-v3"
    assert {p["microarchitecture"] for p in document["profiles"]} == {"zen", "broadwell"}


def test_whatif_cli(capsys):
    code = main(["whatif", "--dumps", str(SAMPLE_FLEET), "@intel", "--remove", "cmp-bdw-*", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["before"]["model"] == "Broadwell-v4"
    assert document["after"]["hosts"] == 5
    assert "AVX-512" in dict(document["gained_notable"])


def test_whatif_needs_a_change(capsys):
    assert main(["whatif", "--dumps", str(SAMPLE_FLEET), "@intel"]) == 2
    assert "what-if needs --add" in capsys.readouterr().err


def test_report_has_a_planning_section_with_the_reference_cpus(tmp_path):
    import pdf

    out = tmp_path / "r.pdf"
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "@amd", "ref:turin*4", "-o", str(out)]) == 0
    assert pdf.pdf_text_contains_all(
        out, "Planning: what holds the pool back", "With the planned reference CPUs", "@amd ref:turin*4",
        "Guest features per retire step", "Retiring one CPU model",
    ) == []


@pytest.mark.slow
def test_limits_at_1000_hosts_names_cpu_models_not_variants(tmp_path, capsys):
    from collections import Counter

    from cpudb.build.synthetic import generate
    from cpudb.catalog.signatures import short_cpu

    generate(1000, tmp_path / "dumps", seed=7)
    dumps = [parse_file(p) for p in sorted((tmp_path / "dumps").iterdir())]
    hypervisors = [d for d in dumps if not d.is_guest]
    # The truth from the dumps themselves: hosts per (CPU model, stepping), and how many flag sets each has.
    hosts = Counter(f"{short_cpu(d.model_name)}, stepping {d.stepping}" for d in dumps)
    variants = {cpu: len({frozenset(d.flags) for d in dumps if f"{short_cpu(d.model_name)}, stepping {d.stepping}" == cpu})
                for cpu in hosts}
    assert len(hypervisors) > 0 and max(variants.values()) > 1  # the fleet does split CPU models into variants

    assert main(["limits", "--dumps", str(tmp_path / "dumps"), "--allow-guest-dumps", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    rows = document["retirements"]
    assert {r["cpu"]: r["hosts"] for r in rows} == dict(hosts)  # one row per CPU model, none dropped
    assert {r["cpu"]: r["variants"] for r in rows} == variants
    gains = [len(r["gained"]) for r in rows]
    assert gains == sorted(gains, reverse=True)  # most gain first
    steps = document["steps"]
    assert steps[0]["retired"] is None and all(s["gained"] > 0 for s in steps[1:])  # stops when nothing is gained
    assert len({s["retired"] for s in steps[1:]}) == len(steps) - 1
