"""The baseline: exact results on real fixture pools, and closeness, safety and no needless loss as
properties checked against a brute-force judgement of every model version (tests/brute_force.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brute_force
from configtext import body
from conftest import DATA, FIXTURES, SAMPLE_FLEET
from cpudb.analysis.baseline import Options, compute
from cpudb.catalog import targets
from cpudb.inputs.parse import parse_file
from cpudb.outputs.emit import configs
from cpudb.store import db, fleet
from cpudb.store.ingest import ingest_paths

FIXTURE_DUMPS = {p.name.removesuffix(".txt"): parse_file(p) for p in FIXTURES.glob("*.txt")}
FLEET_DUMPS = {p.name.split(".")[0]: parse_file(p) for p in SAMPLE_FLEET.iterdir()}
PROPERTY_TARGETS = [None, "debian-12", "ubuntu-24.04", "rhel-9", "proxmox-8", "kubevirt-1.5", "openstack-train",
                    "openstack-wallaby", "openstack-2024.1"]


def qemu_arg(text: dict[str, str]) -> str:
    """The emitted ``-cpu`` argument as the shell passes it."""
    return body(text["qemu"])[0]


def baseline(conn, text, **options):
    fleet.select(conn, text)
    return compute(conn, text, Options(**options))


# --- exact results ---------------------------------------------------------------------------
#
# Skylake-SP (Gold 6132 on a RHEL 7 kernel, which never prints pku) + both Gold 6230 microcode
# states (one without TSX). Every Skylake-Server and Cascadelake-Server version contains pku: the
# expert answer is one of them with pku disabled, not Skylake-Client plus AVX-512 (a CPU nobody made).


def test_skylake_sp_on_rhel7_plus_cascade_lake_gets_a_server_model_without_pku(fixtures_conn):
    result = baseline(fixtures_conn, "intel-gold6132-1 intel-gold6230-1 intel-gold6230-2")
    rec = result.recommended
    assert rec.model.startswith(("Skylake-Server-", "Cascadelake-Server-")), rec.model
    assert "pku" in rec.disabled_flags and "pku" in rec.missing
    assert not {"avx512f", "avx512bw"} & set(rec.extra_flags)  # the model has AVX-512 itself
    assert any("pku is disabled because intel-gold6132-1" in w and "domcapabilities" in w for w in result.warnings)


def test_nova_train_cannot_disable_so_it_gets_the_client_model(fixtures_conn):
    # Nova before Wallaby cannot write -pku, and before 27 compares the bare model with each host.
    rec = baseline(fixtures_conn, "intel-gold6132-1 intel-gold6230-1 intel-gold6230-2", target="openstack-train").recommended
    assert rec.disabled_flags == () and rec.model == "Skylake-Client-v3"


def test_a_kernel_that_hides_sep_still_gets_an_answer(fixtures_conn, tmp_path):
    path = tmp_path / "db.duckdb"
    ingest_paths(path, [DATA / "lscpu-old-kernel-no-sep.txt", FIXTURES / "intel-gold6230-1.txt"])
    conn = db.open_read(path)
    try:
        result = baseline(conn, "")
    finally:
        conn.close()
    rec = result.recommended
    assert rec is not None and "sep" in rec.disabled_flags
    warning = next(w for w in result.warnings if w.startswith("sep is disabled because"))
    assert "old-kernel-host (kernel 2.6.32-754.el6.x86_64)" in warning and "virsh domcapabilities" in warning


def test_rome_plus_milan(fixtures_conn):
    # The 7763's BIOS hides erms/fsrm, so every EPYC-Milan version (with erms) needs edits; on the
    # portable target (libvirt 8.0 names) the plain EPYC-Rome is v1, and ibrs, amd-ssbd come as extras.
    result = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1")
    rec = result.recommended
    assert (rec.model, rec.model_alias) == ("EPYC-Rome-v1", "EPYC-Rome")
    assert {"ibrs", "amd-ssbd", "virt-ssbd", "x2apic", "cmp-legacy"} <= set(rec.extra_flags)
    assert rec.disabled_flags == ("monitor",)
    # With libvirt 10.10 names (RHEL 9) a later Rome version needs fewer edits.
    newer = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1", target="rhel-9").recommended
    assert newer.model.startswith("EPYC-Rome-v") and newer.model != "EPYC-Rome-v1" and newer.edits < rec.edits


def test_ice_lake_plus_sapphire_rapids_on_rhel_9(fixtures_conn):
    rec = baseline(fixtures_conn, "intel-gold5318y-1 intel-plat8480p-1", target="rhel-9").recommended
    assert rec.model.startswith("Icelake-Server-v")
    assert "pdcm" not in rec.extra_flags  # PMU-dependent: only with --pmu
    with_pmu = baseline(fixtures_conn, "intel-gold5318y-1 intel-plat8480p-1", target="rhel-9", pmu=True).recommended
    assert "pdcm" in with_pmu.extra_flags


def test_the_sample_fleet_keeps_ibpb_where_the_target_checks_the_hypervisor(fleet_conn):
    for target in ("debian-12", "openstack-2024.1", None):
        result = baseline(fleet_conn, "", target=target)
        rec = result.recommended
        final = set(brute_force.MODELS[rec.model].features) | set(rec.extra_flags)
        assert "ibpb" in final, (target, rec.model)  # the AMD-encoded bit, CPUID 0x80000008 EBX 12
        assert "ibpb" not in result.guest_features.lost
        text = configs(fleet_conn, result)
        assert "<feature policy='require' name='ibpb'/>" in text["libvirt_xml"] or rec.model.startswith("EPYC")
        assert ",+ibpb," in qemu_arg(text) or "ibpb" in brute_force.MODELS[rec.model].features
    train = baseline(fleet_conn, "", target="openstack-train")
    final = set(brute_force.MODELS[train.recommended.model].features) | set(train.recommended.extra_flags)
    assert "ibpb" not in final and "spec-ctrl" not in final
    assert "ibpb" in train.guest_features.lost and "ibpb" in train.guest_features.lost_security
    assert "ibpb" not in configs(fleet_conn, train)["nova"]


@pytest.mark.parametrize("amd", ["amd-epyc7742-1", "amd-epyc7763-1", "amd-epyc9654-1"])
@pytest.mark.parametrize("intel", ["intel-gold6230-2", "intel-plat8480p-1"])
def test_zen2_and_later_with_cascade_lake_or_later_keep_spectre_controls(fixtures_conn, amd, intel):
    result = baseline(fixtures_conn, f"{amd} {intel}")
    rec = result.recommended
    final = (set(brute_force.MODELS[rec.model].features) | set(rec.extra_flags)) - set(rec.disabled_flags)
    assert {"ibpb", "ibrs", "amd-stibp", "amd-ssbd"} <= final, rec
    assert not {"ibpb", "ibrs", "stibp", "ssbd"} & set(result.guest_features.lost)


def test_debian_12_output_uses_only_names_qemu_7_2_and_libvirt_9_0_know(fixtures_conn):
    qemu_7_2 = {m.name for m in brute_force.CATALOG.models if m.origin == "qemu" and m.qemu_first
                and targets.version_tuple(m.qemu_first) <= (7, 2, 0)}
    qemu_7_2_features = {row[0] for row in brute_force.FEATURES.values() if row[10]}
    metal = [n for n in sorted(FIXTURE_DUMPS) if "-vm-" not in n]
    for a, b in zip(metal, metal[1:] + metal[:1]):
        result = baseline(fixtures_conn, f"{a} {b}", target="debian-12")
        rec = result.recommended
        assert rec.model in qemu_7_2, (a, b, rec.model)
        assert rec.model_alias in brute_force.LIBVIRT_9_0_MODELS, (a, b, rec.model_alias)
        for feature in rec.extra_flags + rec.disabled_flags:
            assert feature in qemu_7_2_features and feature in brute_force.LIBVIRT_9_0_FEATURES, (a, b, feature)


def test_kubevirt_output_never_names_an_obsolete_model(fixtures_conn):
    import yaml

    obsolete = targets.rules().kubevirt_obsolete
    names = sorted(FIXTURE_DUMPS)
    for target in (None, "kubevirt-1.3", "kubevirt-1.5", "debian-12", "proxmox-8"):
        for a, b in zip(names, names[3:] + names[:3]):
            result = baseline(fixtures_conn, f"{a} {b}", target=target)
            document = yaml.safe_load(configs(fixtures_conn, result)["kubevirt"])
            if document is not None:
                model = document["spec"]["domain"]["cpu"]["model"]
                assert model.split("-v")[0] not in obsolete and model not in obsolete, (target, a, b, model)
            if target is None or target.startswith("kubevirt"):
                assert document is not None, (target, a, b)


def test_one_answer_everywhere(fixtures_conn):
    result = baseline(fixtures_conn, "intel-gold6230-2 amd-epyc7763-1", target="rhel-9")
    rec = result.recommended
    text = configs(fixtures_conn, result)
    assert rec.model in text["qemu"] and f"cpu_models = {rec.model_alias}" in text["nova"]
    assert f">{rec.model_alias}</model>" in text["libvirt_xml"] and f"model: {rec.model_alias}" in text["kubevirt"]
    assert not rec.model.startswith("x86-64-")  # Proxmox's types are not QEMU models
    assert rec.edits == len(rec.extra_flags) + len(rec.disabled_flags)
    qemu = qemu_arg(text)
    assert qemu.count(",+") == len(rec.extra_flags) and qemu.count(",-") == len(rec.disabled_flags)
    guest = result.guest_features
    assert guest.headline.startswith(f"guests get {guest.given} of the {guest.pool_common} guest features")
    assert any(w.startswith("Intel and AMD hosts in one pool") for w in result.warnings)


def test_require_names_the_hosts_that_lack_a_flag(fixtures_conn):
    from cpudb.errors import RequirementError

    with pytest.raises(RequirementError, match=r"avx2 is missing on 1 host\(s\): intel-e5-2650v2-1"):
        baseline(fixtures_conn, "intel-e5-2650v2-1 intel-gold6230-1", require=("avx2",))
    with pytest.raises(RequirementError, match=r"no guest CPU model can carry: vmx \(nested\)"):
        baseline(fixtures_conn, "intel-gold6230-1", require=("vmx",))


def test_unmigratable_only_when_allowed(fixtures_conn):
    plain = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1").recommended
    assert "invtsc" not in plain.extra_flags
    allowed = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1", allow_unmigratable=True).recommended
    assert "invtsc" in allowed.extra_flags


def test_not_expressible_lists_common_flags_with_reasons(fixtures_conn):
    result = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1")
    classes = {n.flag: n.klass for n in result.not_expressible}
    assert classes["constant_tsc"] == "synthetic"
    assert classes["nonstop_tsc"] == "unmigratable"
    assert classes["monitor"] == "host-only"
    assert classes["svm"] == "nested"
    assert "avx2" not in classes


# --- properties over random pools, against brute force -----------------------------------------


def check_against_brute_force(result, dumps: dict, target_name, pmu=False):
    pool = [dumps[h] for h in result.hosts]
    target = result.target
    judged, common = brute_force.judge_all(pool, target, pmu)
    usable = [j for j in judged if j.usable]
    rec = result.recommended
    if not usable:
        assert rec is None, (target_name, result.hosts)
        return
    assert rec is not None, (target_name, result.hosts)
    best = min(j.edits for j in usable)
    mine = next(j for j in judged if j.model == rec.model)
    # Closeness: no candidate of the same target has fewer edits; SQL and brute force agree on this one.
    assert mine.usable and mine.edits == rec.edits == best, (target_name, result.hosts, rec.model, rec.edits, best)
    assert set(rec.extra_flags) == mine.extra and set(rec.disabled_flags) == mine.disabled
    # Safety: model + extras - disabled is within every host's abilities under this target.
    problem = brute_force.safe_on_every_host(rec.model, rec.extra_flags, rec.disabled_flags, pool, target)
    assert problem is None, (target_name, problem)
    # No needless loss: every common guest feature the target can name is in the guest's CPU.
    final = (set(brute_force.MODELS[rec.model].features) | set(rec.extra_flags)) - set(rec.disabled_flags)
    names = brute_force.known(target)
    pmu_set = targets.rules().pmu_dependent
    lost = {f for f in common if f in names and (pmu or f not in pmu_set)} - final
    assert not lost, (target_name, result.hosts, lost)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(sorted(FIXTURE_DUMPS)), min_size=1, max_size=5, unique=True),
       st.sampled_from(PROPERTY_TARGETS))
def test_properties_on_random_fixture_pools(fixtures_conn, hosts, target):
    result = baseline(fixtures_conn, " ".join(hosts), target=target)
    check_against_brute_force(result, FIXTURE_DUMPS, target)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(sorted(FLEET_DUMPS)), min_size=1, max_size=10, unique=True),
       st.sampled_from(PROPERTY_TARGETS), st.booleans())
def test_properties_on_random_sample_fleet_pools(fleet_conn, hosts, target, pmu):
    result = baseline(fleet_conn, " ".join(hosts), target=target, pmu=pmu)
    check_against_brute_force(result, FLEET_DUMPS, target, pmu)


def test_one_host_pools_always_get_a_model(fixtures_conn):
    for name in sorted(FIXTURE_DUMPS):
        result = baseline(fixtures_conn, name)
        assert result.recommended is not None, name
        check_against_brute_force(result, FIXTURE_DUMPS, None)
        # Nova Train can neither disable nor count what KVM adds: a guest of QEMU's default CPU
        # (no svm although qemu64 has it) fits no model there; brute force agrees.
        check_against_brute_force(baseline(fixtures_conn, name, target="openstack-train"), FIXTURE_DUMPS, "train")
