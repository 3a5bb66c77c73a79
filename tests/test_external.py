"""cpudb against the real thing: libvirt's cpu-baseline and QEMU's -cpu parser (skipped when absent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES
from cpudb import catalog, fleet
from cpudb.baseline import Options, compute, configs
from cpudb.catalog import VENDOR_GROUPS
from cpudb.libvirt_map import read_cpu_map
from cpudb.parse import parse_file

CPU_MAP = Path("/usr/share/libvirt/cpu_map")
VIRSH = shutil.which("virsh")
QEMU = shutil.which("qemu-system-x86_64")
CATALOG = catalog.current()
MODELS = {m.name: m for m in CATALOG.models}

SAME_VENDOR_POOLS = [
    ("amd-epyc7742-1", "amd-epyc7763-1"),
    ("intel-gold6132-1", "intel-gold6230-1", "intel-gold6230-2"),
    ("intel-gold5318y-1", "intel-plat8480p-1"),
    ("amd-epyc7451-1", "amd-epyc9654-1"),
]


def _recommend(conn, hosts, **options):
    fleet.select(conn, " ".join(hosts))
    return compute(conn, " ".join(hosts), Options(**options))


@pytest.fixture(scope="module")
def installed_libvirt():
    if not VIRSH or not (CPU_MAP / "x86_features.xml").is_file():
        pytest.skip("virsh (libvirt-clients) and libvirt's cpu_map are not installed")
    return read_cpu_map(CPU_MAP)


def host_cpu_xml(dump, installed) -> str:
    """A host as libvirt describes it: every feature its flags show, in this libvirt's names.

    Names are joined on the CPUID location, so features this libvirt does not know drop out.
    """
    group = VENDOR_GROUPS[dump.vendor]
    location = {e.qemu: e.id for e in CATALOG.entries if e.qemu}
    libvirt_name = {f.location.key: name for name, f in installed.features.items()}
    features = sorted(
        {
            libvirt_name[location[feature]]
            for flag, vendor, feature, _ in CATALOG.flag_features()
            if flag in dump.flags and vendor in ("any", group) and location.get(feature) in libvirt_name
        }
    )
    lines = ["<cpu>", "  <arch>x86_64</arch>", "  <model>qemu64</model>",
             f"  <vendor>{'Intel' if group == 'intel' else 'AMD'}</vendor>"]
    lines += [f"  <feature name='{name}'/>" for name in features]
    return "\n".join(lines + ["</cpu>", ""])


def libvirt_baseline_features(xml: str, tmp_path: Path, installed) -> set[str]:
    """Run `virsh cpu-baseline` and expand its answer (model + features) to QEMU feature names."""
    source = tmp_path / "hosts.xml"
    source.write_text(xml)
    result = subprocess.run(
        [VIRSH, "-c", "test:///default", "cpu-baseline", str(source)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    from defusedxml import ElementTree

    root = ElementTree.fromstring(result.stdout)
    model = root.findtext("model")
    names = set(installed.models[model].features) | {
        f.get("name") for f in root.findall("feature") if f.get("policy") == "require"
    }
    to_qemu = {name: e.qemu for e in CATALOG.entries for name in [e.libvirt] if e.libvirt and e.qemu}
    to_qemu.update({name: next((e.qemu for e in CATALOG.entries if e.id == f.location.key), name)
                    for name, f in installed.features.items()})
    return {to_qemu.get(name, name) for name in names}


@pytest.mark.parametrize("hosts", SAME_VENDOR_POOLS, ids=["+".join(p) for p in SAME_VENDOR_POOLS])
def test_recommendation_covers_what_libvirt_cpu_baseline_finds(fixtures_conn, tmp_path, installed_libvirt, hosts):
    dumps = [parse_file(FIXTURES / f"{h}.txt") for h in hosts]
    xml = "".join(host_cpu_xml(d, installed_libvirt) for d in dumps)
    libvirt = libvirt_baseline_features(xml, tmp_path, installed_libvirt)
    rec = _recommend(fixtures_conn, hosts).recommended
    ours = (set(MODELS[rec.model].features) | set(rec.extra_flags)) - set(rec.disabled_flags)
    guest = {row[0] for row in CATALOG.feature_rows() if row[1] == "guest"}
    # libvirt's raw baseline also keeps host-only bits (monitor, ibs), invtsc and nested ones;
    # among guest features, everything libvirt finds must be in cpudb's recommendation.
    assert (libvirt & guest) - ours == set()
    assert len(libvirt & guest) > 40


@pytest.fixture(scope="module")
def qemu_binary():
    if not QEMU:
        pytest.skip("qemu-system-x86_64 (qemu-system-x86) is not installed")
    return QEMU


def run_qemu_cpu(binary: str, cpu: str) -> str:
    """Start a paused q35 machine under TCG with ``-cpu cpu``; return what QEMU printed.

    TCG cannot emulate many features, so with 'enforce' QEMU may stop after warning about
    them; what must never appear is an unknown model or feature name.
    """
    try:
        result = subprocess.run(
            [binary, "-machine", "q35", "-accel", "tcg", "-cpu", cpu, "-S", "-display", "none",
             "-nodefaults", "-monitor", "none", "-serial", "none"],
            capture_output=True, text=True, timeout=5,
        )
        return result.stderr
    except subprocess.TimeoutExpired as exc:  # started and waited, paused: accepted
        return (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")


POOLS = SAME_VENDOR_POOLS + [("intel-gold6230-2", "amd-epyc7763-1"), ("intel-e5-2650v2-1", "intel-e5-2690v4-1")]


@pytest.mark.parametrize("hosts", POOLS, ids=["+".join(p) for p in POOLS])
def test_qemu_7_2_accepts_the_emitted_cpu_argument(fixtures_conn, qemu_binary, hosts):
    version = subprocess.run([qemu_binary, "--version"], capture_output=True, text=True).stdout.split()[3]
    result = _recommend(fixtures_conn, hosts, qemu=version)
    argument = configs(fixtures_conn, result)["qemu"].split()[1]
    assert argument.endswith(",enforce")
    printed = run_qemu_cpu(qemu_binary, argument)
    for line in printed.splitlines():
        assert "TCG doesn't support requested feature" in line, line


def test_qemu_rejects_what_cpudb_must_never_emit(qemu_binary):
    # The check above would catch an unknown feature name: this is what QEMU prints for one.
    assert "not found" in run_qemu_cpu(qemu_binary, "EPYC-Rome,+flush-l1d,enforce")
