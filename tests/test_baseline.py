"""The baseline: exact results on real fixture pools, and safety / no-needless-loss as properties."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, SAMPLE_FLEET
from cpudb import catalog, fleet
from cpudb.baseline import Options, compute
from cpudb.catalog import VENDOR_GROUPS
from cpudb.parse import parse_file

CATALOG = catalog.current()
MODELS = {m.name: m for m in CATALOG.models}
FIXTURE_DUMPS = {p.name.removesuffix(".txt"): parse_file(p) for p in FIXTURES.glob("*.txt")}
FLEET_DUMPS = {p.name.split(".")[0]: parse_file(p) for p in SAMPLE_FLEET.iterdir()}


def baseline(conn, text, **options):
    fleet.select(conn, text)
    return compute(conn, text, Options(**options))


# --- exact results, checked by hand against the model definitions ----------------------------
#
# Rome (7742) + Milan (7763): the 7763's BIOS hides erms/fsrm, so every EPYC-Milan version
# (which has erms) is out; EPYC-Rome-v3 = v2 + a new model-id, and v2 is the first with ibrs and
# amd-ssbd. Both hosts show x2apic, cmp_legacy and ssbd (-> virt-ssbd on AMD) which no Rome
# version contains. monitor is in the model but KVM cannot provide it. amd-ssbd is hidden from
# /proc/cpuinfo, so it is listed as unverifiable.


def test_rome_plus_milan(fixtures_conn):
    result = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1")
    rec = result.recommended
    assert rec.model == "EPYC-Rome-v3"
    assert rec.extra_flags == ("cmp-legacy", "virt-ssbd", "x2apic")
    assert rec.disabled_flags == ("monitor",)
    assert rec.unverifiable == ("amd-ssbd",)
    milan = next(m for m in result.ranking if m.model == "EPYC-Milan-v1")
    assert not milan.compatible
    assert milan.missing == {
        "erms": ("amd-epyc7742-1", "amd-epyc7763-1"),  # the 7763's BIOS hides it, Rome never had it
        "fsrm": ("amd-epyc7742-1", "amd-epyc7763-1"),
        "invpcid": ("amd-epyc7742-1",),
        "pcid": ("amd-epyc7742-1",),
        "pku": ("amd-epyc7742-1",),
    }


# Skylake-SP (Gold 6132, RHEL 7 kernel: no pku, no xsaves printed) + both Gold 6230 states (one
# without hle/rtm). Skylake-Server-v1..v5 all contain pku, Cascadelake-* contain avx512vnni, so
# neither fits; Skylake-Client-v3 (IBRS, no TSX) does and leaves AVX-512, clwb, clflushopt to
# extra flags. Skylake-Server-v4 without pku is the best near miss.


def test_skylake_sp_plus_both_cascade_lake_microcodes(fixtures_conn):
    result = baseline(fixtures_conn, "intel-gold6132-1 intel-gold6230-1 intel-gold6230-2")
    rec = result.recommended
    assert rec.model == "Skylake-Client-v3"
    assert rec.extra_flags == (
        "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl", "clflushopt", "clwb", "mpx", "pdcm",
        "pdpe1gb", "ss", "ssbd", "stibp", "tsc-adjust",
    )
    assert rec.disabled_flags == ()
    assert result.near_misses[0].model == "Skylake-Server-v4"
    assert result.near_misses[0].missing == {"pku": ("intel-gold6132-1",)}
    assert any(
        w.startswith("TSX differs inside one CPU model: intel-gold6230-1 has hle rtm, the other 1 Intel(R) Xeon(R) "
                     "Gold 6230 CPU @ 2.10GHz stepping 7 host does not")
        for w in result.warnings
    )


# Ice Lake-SP (5318Y) + Sapphire Rapids (8480+): neither has hle/rtm, so Icelake-Server-v7 (TSX
# back) is out; v5 and v6 are equal for lscpu (v6 adds a VMX capability) and v6 is newer.
# SapphireRapids needs amx/avx512-fp16 the Ice Lake lacks.


def test_ice_lake_plus_sapphire_rapids(fixtures_conn):
    rec = baseline(fixtures_conn, "intel-gold5318y-1 intel-plat8480p-1").recommended
    assert rec.model == "Icelake-Server-v6"
    assert rec.extra_flags == ("flush-l1d", "md-clear", "pdcm", "ss", "stibp", "tsc-adjust")
    assert rec.disabled_flags == ()
    assert {"mds-no", "taa-no", "rdctl-no"} <= set(rec.unverifiable)


# Naples (7451) + Genoa (9654): EPYC-Rome needs clwb/umip/rdpid the 7451 lacks; EPYC-v3/v4 add
# ibpb, perfctr-core, clzero, xsaveerptr and xsaves to v1 (both hosts have them), v4 only renames
# the model-id; EPYC-v5 adds overflow-recov/succor, which KVM cannot provide.


def test_naples_plus_genoa(fixtures_conn):
    result = baseline(fixtures_conn, "amd-epyc7451-1 amd-epyc9654-1")
    rec = result.recommended
    assert rec.model == "EPYC-v4"
    assert rec.extra_flags == ("cmp-legacy", "virt-ssbd")
    assert rec.disabled_flags == ("monitor",)
    v5 = next(m for m in result.ranking if m.model == "EPYC-v5")
    assert v5.compatible and set(v5.kvm_disabled) == {"monitor", "overflow-recov", "succor"}


# Intel (Gold 6230 without TSX) + AMD (Milan 7763): no vendor model fits both (Intel models need
# erms or spec-ctrl, AMD ones sse4a/mmxext); Proxmox's x86-64-v3 (= qemu64 + v3 flags) does, with
# qemu64's svm turned off because the Intel host has none.


def test_intel_plus_amd(fixtures_conn):
    result = baseline(fixtures_conn, "intel-gold6230-2 amd-epyc7763-1")
    rec = result.recommended
    assert (rec.model, rec.model_alias) == ("x86-64-v3", "qemu64-v1")
    assert rec.disabled_flags == ("svm",)
    assert {"avx2", "fma", "bmi2", "movbe", "pku", "clwb", "sse4.2"} <= set(rec.extra_flags)
    assert not {"erms", "avx512f", "sse4a"} & set(rec.extra_flags)
    assert any(w.startswith("Intel and AMD hosts in one pool") for w in result.warnings)


# The whole sample fleet (Broadwell to Sapphire Rapids, Naples to Genoa): the same cross-vendor
# answer, limited by Naples (no clwb, pku) and Broadwell (no AVX-512).


def test_whole_sample_fleet(fleet_conn):
    result = baseline(fleet_conn, "")
    rec = result.recommended
    assert rec.model == "x86-64-v3"
    assert rec.extra_flags == (
        "3dnowprefetch", "abm", "adx", "aes", "arat", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "fsgsbase",
        "movbe", "pclmulqdq", "pdpe1gb", "popcnt", "rdrand", "rdseed", "rdtscp", "smap", "smep", "sse4.1",
        "sse4.2", "ssse3", "vme", "xsave", "xsaveopt",
    )
    assert len(result.hosts) == 10


def test_options_qemu_and_libvirt_9_0(fixtures_conn):
    # libvirt 9.0 knows no -vN names: only versions with a plain or variant name it knows remain.
    # EPYC-Rome-v2 and -v3 have neither, so the plain EPYC-Rome (= v1, without ibrs) is used.
    rec = baseline(fixtures_conn, "amd-epyc7742-1 amd-epyc7763-1", qemu="7.2", libvirt="9.0").recommended
    assert (rec.model, rec.model_alias) == ("EPYC-Rome-v1", "EPYC-Rome")
    assert "ibrs" in rec.extra_flags
    # libvirt 9.0's Cascadelake-Server-noTSX (= v3) still lists mpx, which both hosts have.
    result = baseline(fixtures_conn, "intel-gold6230-1 intel-gold6230-2", libvirt="9.0")
    assert (result.recommended.model, result.recommended.model_alias) == (
        "Cascadelake-Server-v3", "Cascadelake-Server-noTSX",
    )
    assert any("libvirt's definition of Cascadelake-Server-noTSX also requires mpx" in w for w in result.warnings)


def test_libvirt_definition_requirements_make_a_model_incompatible(fixtures_conn):
    # Ice Lake has no MPX; libvirt 9.0's Icelake-Server-noTSX still requires mpx (and intel-pt).
    result = baseline(fixtures_conn, "intel-gold5318y-1", libvirt="9.0")
    noTSX = next(m for m in result.ranking if m.model == "Icelake-Server-v2")
    assert noTSX.missing == {"mpx": ("intel-gold5318y-1",)}


def test_require_names_the_hosts_that_lack_a_flag(fixtures_conn):
    import pytest

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


# --- properties over random pools ------------------------------------------------------------


def _features_of(dump, flag_features):
    group = VENDOR_GROUPS.get(dump.vendor or "", "unknown")
    return {f for flag in dump.flags for v, f in flag_features.get(flag, ()) if v in ("any", group)}


FLAG_FEATURES: dict[str, list[tuple[str, str]]] = {}
for flag, vendor, feature, _current in CATALOG.flag_features():
    FLAG_FEATURES.setdefault(flag, []).append((vendor, feature))
FEATURE_ROWS = {row[0]: row for row in CATALOG.feature_rows()}
CLASS = {name: klass for name, klass, _ in CATALOG.flag_classes()}


def _visible(feature, group):
    row = FEATURE_ROWS[feature]
    return row[7] if group == "intel" else row[8]


def check_safety_and_no_needless_loss(result, dumps):
    rec = result.recommended
    if rec is None:
        return
    final = (set(MODELS[rec.model].features) | set(rec.extra_flags)) - set(rec.disabled_flags)
    for name in result.hosts:
        dump = dumps[name]
        group = VENDOR_GROUPS.get(dump.vendor or "", "unknown")
        have = _features_of(dump, FLAG_FEATURES)
        for feature in final:
            row = FEATURE_ROWS[feature]
            if row[1] == "guest-marker":
                continue
            native = row[6]
            if native not in ("any", group) and group != "unknown":
                raise AssertionError(f"{rec.model}: {feature} is {native}-only but {name} is {group}")
            if _visible(feature, group) and feature not in have:
                raise AssertionError(f"{rec.model} + extras: {feature} is not on {name}")
    # No needless loss: every guest-class flag all hosts share is in the recommendation, through
    # a feature it shows on every host's vendor.
    common = set.intersection(*(set(dumps[h].flags) for h in result.hosts))
    for flag in common:
        if CLASS.get(flag) != "guest":
            continue
        per_host = [
            {f for v, f in FLAG_FEATURES.get(flag, ()) if v in ("any", VENDOR_GROUPS.get(dumps[h].vendor or "", ""))}
            for h in result.hosts
        ]
        shared = set.intersection(*per_host)
        if shared and not shared & final:
            raise AssertionError(f"{rec.model}: common guest flag {flag} ({shared}) is neither in the model nor extra")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(sorted(FIXTURE_DUMPS)), min_size=1, max_size=6, unique=True))
def test_properties_on_random_fixture_pools(fixtures_conn, hosts):
    result = baseline(fixtures_conn, " ".join(hosts))
    check_safety_and_no_needless_loss(result, FIXTURE_DUMPS)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(sorted(FLEET_DUMPS)), min_size=1, max_size=10, unique=True))
def test_properties_on_random_sample_fleet_pools(fleet_conn, hosts):
    result = baseline(fleet_conn, " ".join(hosts))
    check_safety_and_no_needless_loss(result, FLEET_DUMPS)


def test_one_host_pools_always_get_a_model(fixtures_conn):
    for name in sorted(FIXTURE_DUMPS):
        result = baseline(fixtures_conn, name)
        assert result.recommended is not None, name
        check_safety_and_no_needless_loss(result, FIXTURE_DUMPS)
