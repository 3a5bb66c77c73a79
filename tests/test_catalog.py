"""The flag dictionary and the model catalog: spot checks, real QEMU 7.2 and libvirt, schema, regeneration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, REFERENCE, ROOT, requires_reference
from cpudb.build.catalog import build
from cpudb.catalog import dictionary as catalog
from cpudb.catalog.libvirt_map import read_cpu_map
from cpudb.errors import CatalogError
from cpudb.store import db, lookup
from cpudb.store.ingest import ingest_into

CATALOG = catalog.current()
MODELS = {m.name: m for m in CATALOG.models}


@pytest.fixture(scope="module")
def conn():
    connection = db.open_memory()
    yield connection
    connection.close()


def entry_for(conn, name):
    return lookup.flag_info(conn, name)[0]


@pytest.mark.parametrize(
    ("kernel", "qemu", "libvirt"),
    [
        ("pni", "pni", "pni"),
        ("sse4_1", "sse4.1", "sse4.1"),
        ("avx512_vnni", "avx512vnni", "avx512vnni"),
        ("tsc_deadline_timer", "tsc-deadline", "tsc-deadline"),
        ("pclmulqdq", "pclmulqdq", "pclmuldq"),
        ("lahf_lm", "lahf-lm", "lahf_lm"),
        ("tsc_adjust", "tsc-adjust", "tsc_adjust"),
        ("sha_ni", "sha-ni", "sha-ni"),
    ],
)
def test_three_names_of_one_feature(conn, kernel, qemu, libvirt):
    entry = entry_for(conn, kernel)
    assert (entry.kernel, entry.qemu, entry.libvirt) == (kernel, qemu, libvirt)
    # Any of the names finds the same entry.
    assert entry_for(conn, qemu).entry_id == entry.entry_id == entry_for(conn, libvirt).entry_id


@pytest.mark.parametrize(
    ("name", "klass"),
    [
        ("constant_tsc", "synthetic"),
        ("nonstop_tsc", "unmigratable"),
        ("invtsc", "unmigratable"),
        ("rep_good", "synthetic"),
        ("osxsave", "os-state"),
        ("ospke", "os-state"),
        ("hypervisor", "guest-marker"),
        ("vmx", "nested"),
        ("svm", "nested"),
        ("npt", "nested"),
        ("ept", "nested"),
        ("monitor", "host-only"),
        ("est", "host-only"),
        ("hwp", "host-only"),
        ("sme", "host-only"),
        ("sgx", "host-only"),
        ("rdctl-no", "msr-only"),
        ("vmx-ept", "msr-only"),
        ("avx2", "guest"),
        ("xsaves", "guest"),
        ("ibpb", "guest"),
        ("eagerfpu", "synthetic"),
        ("retpoline_amd", "synthetic"),
    ],
)
def test_classes(conn, name, klass):
    entries = lookup.flag_info(conn, name)
    assert entries[0].klass == klass, entries[0].reason


def test_legacy_names_of_rhel7_kernels(conn):
    assert entry_for(conn, "spec_ctrl").qemu == "spec-ctrl"
    assert entry_for(conn, "intel_stibp").qemu == "stibp"
    assert entry_for(conn, "perfctr_l2").kernel == "perfctr_llc"


def derivations(conn, flag):
    return set(conn.execute("SELECT vendor, feature FROM flag_features WHERE flag = ?", [flag]).fetchall())


def test_vendor_specific_derivations(conn):
    assert derivations(conn, "ibpb") == {("intel", "spec-ctrl"), ("amd", "ibpb")}
    assert derivations(conn, "ibrs") == {("intel", "spec-ctrl"), ("amd", "ibrs")}
    assert derivations(conn, "stibp") == {("intel", "stibp"), ("amd", "amd-stibp")}
    assert derivations(conn, "ssbd") == {("intel", "ssbd"), ("amd", "virt-ssbd")}  # Zen 1 sets ssbd from LS_CFG
    assert derivations(conn, "ibrs_enhanced") == {("intel", "ibrs-all"), ("amd", "auto-ibrs")}
    assert derivations(conn, "nonstop_tsc") == {("any", "invtsc")}
    assert derivations(conn, "constant_tsc") == set()
    assert derivations(conn, "spec_ctrl") == {("any", "spec-ctrl")}  # RHEL 7 spelling of the CPUID bit


def test_hidden_features_are_not_visible_and_keep_their_vendor(conn):
    rows = {
        f: (visible_intel, visible_amd, native)
        for f, visible_intel, visible_amd, native in conn.execute(
            "SELECT feature, visible_intel, visible_amd, native_vendor FROM features"
            " WHERE feature IN ('amd-ssbd', 'spec-ctrl', 'avx2', 'amx-fp16', 'rdctl-no')"
        ).fetchall()
    }
    assert rows["avx2"] == (True, True, "any")
    assert rows["spec-ctrl"] == (True, False, "intel")  # shown on Intel through ibrs/ibpb
    assert rows["amd-ssbd"] == (False, False, "amd")
    assert rows["amx-fp16"] == (False, False, "any")
    assert rows["rdctl-no"] == (False, False, "any")


def test_model_spot_checks(conn):
    assert lookup.resolve_model(conn, "Cascadelake-Server-noTSX") == "Cascadelake-Server-v3"
    assert lookup.resolve_model(conn, "Broadwell-noTSX-IBRS") == "Broadwell-v4"
    assert lookup.resolve_model(conn, "EPYC-IBPB") == "EPYC-v2"
    assert lookup.resolve_model(conn, "Cascadelake-Server") == "Cascadelake-Server-v1"
    assert "avx512f" not in MODELS["EPYC-Rome-v1"].features
    assert "avx512f" in MODELS["Skylake-Server-v4"].features
    assert "hle" not in MODELS["Skylake-Server-v4"].features
    assert {"hle", "rtm"} <= set(MODELS["Cascadelake-Server-v1"].features)
    assert MODELS["Cascadelake-Server-v3"].libvirt_9_0_names == ("Cascadelake-Server-noTSX",)
    # current libvirt marks mpx removed="yes" (no longer required); libvirt 9.0 still requires it
    assert MODELS["Cascadelake-Server-v3"].libvirt_extra == ()
    assert MODELS["Cascadelake-Server-v3"].libvirt_9_0_extra == ("mpx",)


def test_every_model_family_of_the_issue_is_there():
    names = set(MODELS)
    assert {"Skylake-Server-v1", "DiamondRapids-v1", "EPYC-v1", "EPYC-Turin-v1", "YongFeng-v1"} <= names
    assert {"qemu64-v1", "kvm64-v1", "x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4"} <= names
    assert set(MODELS["x86-64-v2"].features) == set(MODELS["qemu64-v1"].features) | {"popcnt", "pni", "sse4.1", "sse4.2", "ssse3"}


def test_every_fixture_flag_has_a_class():
    conn = db.open_memory()
    ingest_into(conn, [FIXTURES])
    unknown = conn.execute(
        "SELECT DISTINCT flag FROM host_flags LEFT JOIN flag_classes USING (flag) WHERE class IS NULL"
    ).fetchall()
    # Deliberately empty: a new fixture with an unknown flag must be classified (or listed here).
    assert unknown == []


def test_data_files_match_their_schema():
    assert len(CATALOG.entries) == 594 and len(CATALOG.models) == 108


def test_schema_rejects_unknown_keys_and_wrong_types(tmp_path):
    flags = json.loads((ROOT / "data" / "flags.json").read_text())
    flags["entries"][0]["colour"] = "blue"
    (tmp_path / "flags.json").write_text(json.dumps(flags))
    shutil.copyfile(ROOT / "data" / "models.json", tmp_path / "models.json")
    with pytest.raises(CatalogError, match=r"flags\.json\[0\]: unknown keys \['colour'\]"):
        catalog.read_catalog(tmp_path / "flags.json", tmp_path / "models.json")
    flags["entries"][0].pop("colour")
    flags["entries"][0]["legacy"] = "spec_ctrl"
    (tmp_path / "flags.json").write_text(json.dumps(flags))
    with pytest.raises(CatalogError, match=r"flags\.json\[0\]\.legacy: expected a list of strings"):
        catalog.read_catalog(tmp_path / "flags.json", tmp_path / "models.json")


def test_models_must_name_known_features(tmp_path):
    models = json.loads((ROOT / "data" / "models.json").read_text())
    models["models"][0]["features"].append("warp-drive")
    (tmp_path / "models.json").write_text(json.dumps(models))
    with pytest.raises(CatalogError, match=r"models\.json: qemu64-v1: unknown feature\(s\) warp-drive"):
        catalog.read_catalog(ROOT / "data" / "flags.json", tmp_path / "models.json")


# --- against the reference: real QEMU 7.2 answers, libvirt's cpu_map, regeneration --------------

IGNORED = {"vme"}  # QEMU 7.2's answers were taken under TCG, which turns vme off


def _comparable(features):
    return {f for f in features if not f.startswith("vmx-") and f not in IGNORED}


@requires_reference()
def test_catalog_matches_real_qemu_7_2_for_every_model_it_knows():
    expansion = json.loads((REFERENCE / "qemu-7.2" / "models-expansion.json").read_text())
    checked = 0
    for name, features in expansion.items():
        if name not in MODELS:
            continue  # plain and variant alias names; their versions are checked
        assert _comparable(MODELS[name].features) == _comparable(features), name
        checked += 1
    assert checked == 74


@requires_reference()
def test_aliases_and_first_releases_agree_with_qemu_7_2():
    definitions = json.loads((REFERENCE / "qemu-7.2" / "cpu-definitions-tcg.json").read_text())
    aliases = {alias: m.name for m in CATALOG.models for alias in m.aliases}
    for name, definition in definitions.items():
        target = definition["alias-of"]
        if target and name in aliases:
            assert aliases[name] == target, name
    offered = {name for name in definitions if name in MODELS}
    for model in CATALOG.models:
        if model.origin == "qemu" and model.qemu_first:
            in_7_2 = catalog.release_tuple(model.qemu_first) <= (7, 2, 0)
            assert (model.name in offered) == in_7_2, model.name


@requires_reference()
def test_libvirt_definitions_are_within_qemu_features_plus_recorded_extras():
    cpu_map = read_cpu_map(REFERENCE / "libvirt-cpu_map")
    to_qemu = {e.libvirt: e.qemu for e in CATALOG.entries if e.libvirt and e.qemu}
    checked = 0
    for model in CATALOG.models:
        if model.name in cpu_map.models:
            libvirt = {to_qemu.get(f, f) for f in cpu_map.models[model.name].features if not f.startswith("vmx-")}
            assert libvirt <= set(model.features) | set(model.libvirt_extra or ()), model.name
            checked += 1
    assert checked >= 100
    libvirt9 = json.loads((REFERENCE / "qemu-7.2" / "libvirt-9.0-cpu_map-models.json").read_text())
    for model in CATALOG.models:
        for name in model.libvirt_9_0_names:
            libvirt = {to_qemu.get(f, f) for f in libvirt9[name]["features"] if not f.startswith("vmx-")}
            assert libvirt <= set(model.features) | set(model.libvirt_9_0_extra or ()), name


@requires_reference()
def test_regenerating_the_catalog_gives_no_diff(tmp_path):
    data = ROOT / "data"
    from cpudb.resources import MIRRORED_YAML

    for name in ("flag_overrides.yaml", "proxmox_models.yaml", "reference_cpus/generations.yaml", "libvirt/libvirt-9.0.json",
                 *MIRRORED_YAML):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(data / name, tmp_path / name)
    build(REFERENCE, tmp_path)
    for name in ("flags.json", "models.json", "reference_cpus/references.json", "libvirt/libvirt-current.json",
                 "yaml-mirror.json"):
        assert (tmp_path / name).read_bytes() == (data / name).read_bytes(), name


def test_generated_files_say_how_to_regenerate_them():
    for name in ("flags.json", "models.json", "libvirt/libvirt-current.json"):
        header = json.loads((ROOT / "data" / name).read_text())["generated_by"]
        assert header.startswith("cpudb catalog build")


# --- import-libvirt ------------------------------------------------------------------------------


@requires_reference()
def test_import_libvirt_reports_names_and_extra_requirements():
    document = catalog.import_libvirt(REFERENCE / "libvirt-cpu_map")
    models = {m["name"]: m for m in document["models"]}
    assert models["Cascadelake-Server-noTSX"]["qemu_model"] == "Cascadelake-Server-v3"
    # mpx is marked removed='yes' in this map: libvirt no longer requires it of hosts
    assert "mpx" not in models["Cascadelake-Server-noTSX"]["features"]
    assert models["Cascadelake-Server-noTSX"]["extra"] == []
    assert models["Opteron_G2"]["extra"] == ["rdtscp"]  # libvirt's G2 has rdtscp, QEMU's has not
    assert models["EPYC-Rome-v4"]["qemu_model"] == "EPYC-Rome-v4"
    assert models["EPYC-Rome-v4"]["extra"] == []
    assert document["warnings"] == [
        "x86_DiamondRapids.xml: model DiamondRapids uses feature(s) missing from x86_features.xml: "
        "apx-nci-ndd-nf, apxf, avx10-vnni-int, movrs"
    ]


def _cpu_map(tmp_path: Path, features_xml: str) -> Path:
    folder = tmp_path / "cpu_map"
    folder.mkdir()
    (folder / "x86_features.xml").write_text(features_xml)
    return folder


def test_import_libvirt_malformed_xml_names_the_file(tmp_path):
    folder = _cpu_map(tmp_path, "<cpus><feature name='fpu'><cpuid eax_in='0x1' edx='0x1'/></feature>")
    with pytest.raises(CatalogError, match=r"x86_features\.xml: malformed XML"):
        catalog.import_libvirt(folder)


def test_import_libvirt_refuses_entity_expansion(tmp_path):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<cpus><feature name='&lol2;'><cpuid eax_in='0x1' edx='0x1'/></feature></cpus>"
    )
    folder = _cpu_map(tmp_path, bomb)
    with pytest.raises(CatalogError, match=r"x86_features\.xml: refused unsafe XML"):
        catalog.import_libvirt(folder)


def test_import_libvirt_needs_a_cpu_map_folder(tmp_path):
    with pytest.raises(CatalogError, match="no x86_features.xml"):
        catalog.import_libvirt(tmp_path)


def test_every_shipped_data_file_loads_through_its_checks():
    """The YAML and JSON files read at run time (the generated ones are checked above; the build
    inputs, flag_overrides.yaml, proxmox_models.yaml and generations.yaml, by the regeneration test)."""
    from cpudb.catalog import levels
    from cpudb.inputs.xml import libvirt_maps
    from cpudb.outputs import report
    from cpudb.store import references, selection

    assert {f.name for f in report.families()} >= {"AVX-512", "TSX"}
    systems, _ = levels.guest_systems()
    assert systems["x86-64-v3"]
    assert len(references.dumps()) == 19
    assert selection.load_inventory(ROOT / "data" / "inventory.yaml")
    maps = libvirt_maps()
    assert "EPYC-Milan-v3" in maps.models  # current libvirt
    assert "Cascadelake-Server-noTSX" in maps.models  # also in libvirt 9.0
    assert maps.features["cmp_legacy"] == "cmp-legacy"


def test_the_yaml_mirror_is_current_and_equals_the_yaml():
    # `cpudb catalog build` writes data/yaml-mirror.json; a stale mirror would only cost speed
    # (the file is then parsed), but the shipped one must be current.
    import hashlib
    import json

    import yaml

    from cpudb.resources import MIRRORED_YAML, YAML_MIRROR, data_path, data_yaml

    mirror = json.loads(data_path(YAML_MIRROR).read_text(encoding="utf-8"))["files"]
    assert set(mirror) == set(MIRRORED_YAML)
    for name in MIRRORED_YAML:
        source = data_path(name).read_bytes()
        assert mirror[name]["sha256"] == hashlib.sha256(source).hexdigest(), f"{name}: run make catalog"
        assert data_yaml(name) == yaml.safe_load(source) == mirror[name]["document"]
