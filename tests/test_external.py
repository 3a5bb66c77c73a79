"""cpudb against the real thing: libvirt's cpu-baseline and QEMU's -cpu parser (skipped when absent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import configtext
from conftest import FIXTURES
from cpudb.analysis.baseline import Options, compute
from cpudb.build import libvirt_hosts
from cpudb.catalog import dictionary as catalog
from cpudb.catalog import targets
from cpudb.catalog.libvirt_map import read_cpu_map
from cpudb.errors import CpudbError
from cpudb.inputs.parse import parse_file
from cpudb.outputs.emit import configs
from cpudb.store import fleet

CPU_MAP = Path("/usr/share/libvirt/cpu_map")
VIRSH = shutil.which("virsh")
QEMU = shutil.which("qemu-system-x86_64")
VIRT_QEMU_RUN = shutil.which("virt-qemu-run")
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
    """A host as libvirt describes it (see cpudb.build.libvirt_hosts), in this libvirt's names."""
    return libvirt_hosts.host_cpu_xml(dump, libvirt_hosts.feature_names(installed, CATALOG))


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
    guest = {row[0] for row in CATALOG.feature_rows() if row[1] == "guest"} - targets.rules().pmu_dependent
    # libvirt's raw baseline also keeps host-only bits (monitor, ibs), invtsc and nested ones;
    # among guest features, everything libvirt finds must be in cpudb's recommendation.
    assert (libvirt & guest) - ours == set()
    assert len(libvirt & guest) > 40


@pytest.fixture(scope="module")
def qemu_binary():
    if not QEMU:
        pytest.skip("qemu-system-x86_64 (qemu-system-x86) is not installed")
    return QEMU


def _version(command: list[str], word: int) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20).stdout.split()
        return targets.version_tuple(out[word].split("(")[0].rstrip(","))
    except (OSError, IndexError, ValueError, subprocess.TimeoutExpired, CpudbError):
        return None


def installed_stack() -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
    qemu = _version([QEMU, "--version"], 3) if QEMU else None
    libvirt = _version([VIRSH, "--version"], 0) if VIRSH and VIRT_QEMU_RUN else None
    return qemu, libvirt


def targets_on_this_machine(need_libvirt: bool) -> list[str]:
    """Targets whose QEMU (and libvirt) release this machine has or is newer than, keeping only
    releases of the same major version, so the installed tools stand for the target."""
    qemu, libvirt = installed_stack()
    found = []
    for target in list(targets.listed()) + [targets.portable()]:
        if qemu is None or not (target.qemu_version <= qemu and target.qemu_version[0] >= qemu[0] - 1):
            continue
        if need_libvirt and (libvirt is None or target.libvirt_version is None
                             or not (target.libvirt_version <= libvirt and target.libvirt_version[0] >= libvirt[0] - 1)):
            continue
        found.append(target.name)
    return found


def run_qemu_cpu(binary: str, cpu: str) -> tuple[bool, str]:
    """Start a paused q35 machine under TCG with ``-cpu cpu``: (still running after 3 s, stderr)."""
    try:
        result = subprocess.run(
            [binary, "-machine", "q35", "-accel", "tcg", "-cpu", cpu, "-S", "-display", "none",
             "-nodefaults", "-monitor", "none", "-serial", "none"],
            capture_output=True, text=True, timeout=3,
        )
        return False, result.stderr
    except subprocess.TimeoutExpired as exc:  # started and waited, paused: accepted
        return True, (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")


POOLS = SAME_VENDOR_POOLS + [
    ("intel-gold6230-2", "amd-epyc7763-1"), ("intel-e5-2650v2-1", "intel-e5-2690v4-1"),
    ("intel-gold6132-1", "amd-epyc9654-1", "intel-plat8480p-1"), ("amd-epyc9575f-1", "amd-epyc7451-1"),
]


def distinct_configs(conn, key: str, need_libvirt: bool) -> dict[str, list[str]]:
    """Each distinct configuration text of ``key`` the targets on this machine give the pools, with
    the (target, pool) cases that gave it: many targets share names, so each runs once."""
    found: dict[str, list[str]] = {}
    for target in targets_on_this_machine(need_libvirt):
        for hosts in POOLS:
            result = _recommend(conn, hosts, target=target)
            text = configs(conn, result)[key]
            body = "\n".join(configtext.body(text))
            found.setdefault(body, []).append(f"{target}: {'+'.join(hosts)}")
    return found


def run_all(check, cases: dict[str, list[str]]) -> list[str]:
    """Run ``check`` on every case, two at a time; the failures, each with the cases it stands for."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(check, cases))
    return [f"{cases[body][0]} (and {len(cases[body]) - 1} more): {why}" for body, why in zip(cases, outcomes) if why]


def test_the_emitted_cpu_argument_starts_qemu(fixtures_conn, qemu_binary):
    cases = distinct_configs(fixtures_conn, "qemu", need_libvirt=False)
    if not cases:
        pytest.skip("no target's QEMU release is installed here")

    def check(body: str) -> str | None:
        cpu = body.split()[1]
        if not cpu.endswith(",enforce"):
            return "no enforce"
        # TCG cannot emulate every feature KVM gives, so 'enforce' is left out here, and only here.
        started, printed = run_qemu_cpu(qemu_binary, cpu.removesuffix(",enforce"))
        bad = [line for line in printed.splitlines() if "TCG doesn't support requested feature" not in line]
        return None if started and not bad else f"{cpu}: {printed.strip()}"

    assert run_all(check, cases) == []
    assert len(cases) >= len(POOLS)


def test_qemu_rejects_what_cpudb_must_never_emit(qemu_binary):
    # The checks above would catch an unknown feature name: this is what QEMU does with one.
    started, printed = run_qemu_cpu(qemu_binary, "EPYC-Rome,+flush-l1d")
    assert not started and "not found" in printed


# --- libvirt's own QEMU driver: virt-qemu-run ------------------------------------------------------

DOMAIN = """<domain type='qemu'>
  <name>cpudb-{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
{cpu}
  <devices><emulator>{qemu}</emulator></devices>
</domain>
"""


def run_in_libvirt(cpu_xml: str, name: str) -> tuple[bool, str]:
    """Start a domain with this <cpu> in libvirt's embedded QEMU driver, as an unprivileged user with
    its own root: (whether libvirt said the guest is running, what it printed)."""
    import os
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="cpudb-virt-", dir="/tmp"))
    (work / "root" / "etc").mkdir(parents=True)
    # No virtlogd in a private root: QEMU's output goes to a file.
    (work / "root" / "etc" / "qemu.conf").write_text('stdio_handler = "file"\n')
    xml = DOMAIN.format(name=name, cpu="\n".join("  " + line for line in cpu_xml.splitlines()), qemu=QEMU)
    (work / "domain.xml").write_text(xml)
    command = [VIRT_QEMU_RUN, "-v", "-r", str(work / "root"), str(work / "domain.xml")]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "XDG_RUNTIME_DIR": str(work / "run")}
    if os.getuid() == 0:  # libvirt's embedded driver runs unprivileged; as root it wants a libvirt-qemu user
        for path in [work, *work.rglob("*")]:
            os.chown(path, 65534, 65534)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)
    lines, running = [], False
    try:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not running:
            if not selector.select(timeout=max(0.1, deadline - time.monotonic())):
                break
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            running = "guest running" in line
    finally:
        import signal

        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return running, "\n".join(lines)


@pytest.fixture(scope="module")
def libvirt_qemu_driver():
    if not (QEMU and VIRT_QEMU_RUN):
        pytest.skip("virt-qemu-run (libvirt-daemon-driver-qemu) or qemu-system-x86_64 is not installed")
    if not shutil.which("setpriv") and __import__("os").getuid() == 0:
        pytest.skip("setpriv is needed to run libvirt's embedded driver unprivileged")


def test_the_emitted_libvirt_cpu_starts_in_libvirts_qemu_driver(fixtures_conn, libvirt_qemu_driver):
    cases = distinct_configs(fixtures_conn, "libvirt_xml", need_libvirt=True)
    if not cases:
        pytest.skip("no target's QEMU and libvirt releases are installed here")

    def check(body: str) -> str | None:
        if "check='partial'" not in body:
            return "not check='partial'"
        # TCG cannot emulate every feature KVM gives, so the check is relaxed to 'none' here, and only here.
        running, printed = run_in_libvirt(body.replace("check='partial'", "check='none'"), "test")
        return None if running else printed.splitlines()[-1]

    assert run_all(check, cases) == []
    assert len(cases) >= len(POOLS)


def test_libvirt_refuses_what_cpudb_must_never_emit(libvirt_qemu_driver):
    # What libvirt 9.0 does with a -vN name and with check='full': the checks above would catch both.
    version = installed_stack()[1]
    if version is None or version >= (10, 10, 0):
        pytest.skip("needs a libvirt older than 10.10")
    running, printed = run_in_libvirt("<cpu mode='custom' match='exact' check='none'><model>EPYC-v4</model></cpu>", "v4")
    assert not running and "Unknown CPU model EPYC-v4" in printed
    running, printed = run_in_libvirt("<cpu mode='custom' match='exact' check='full'><model>EPYC-Rome</model></cpu>", "full")
    assert not running and "guest CPU doesn't match specification" in printed
