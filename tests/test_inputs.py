"""Richer inputs: libvirt XML (capabilities, domcapabilities, <cpu>, <cpudata>), cpuid -r, and the
files cpudb collect writes; and what the baseline makes of a host's guest view."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REFERENCE, fixture, requires_reference
from cpudb.analysis.baseline import Options, compute
from cpudb.catalog.dictionary import current
from cpudb.errors import DumpParseError
from cpudb.inputs.parse import parse_dump, parse_file
from cpudb.store import db, fleet
from cpudb.store.ingest import ingest_paths

CPUID_DUMPS = REFERENCE / "cpuid-dumps"


def domcaps(model: str, vendor: str, require=(), disable=(), arch: str = "x86_64") -> str:
    """A virsh domcapabilities document shaped like libvirt 9.0's, with the host-model CPU given."""
    features = [f"      <feature policy='require' name='{n}'/>" for n in require]
    features += [f"      <feature policy='disable' name='{n}'/>" for n in disable]
    return "\n".join(
        [
            "<domainCapabilities>",
            "  <path>/usr/bin/qemu-system-x86_64</path>",
            "  <domain>kvm</domain>",
            "  <machine>pc-q35-7.2</machine>",
            f"  <arch>{arch}</arch>",
            "  <cpu>",
            "    <mode name='host-passthrough' supported='yes'/>",
            "    <mode name='host-model' supported='yes'>",
            f"      <model fallback='forbid'>{model}</model>",
            f"      <vendor>{vendor}</vendor>",
            *features,
            "    </mode>",
            "    <mode name='custom' supported='yes'>",
            f"      <model usable='yes' vendor='{vendor}'>{model}</model>",
            "    </mode>",
            "  </cpu>",
            "</domainCapabilities>",
            "",
        ]
    )


def host_model(dump_file: Path, model: str, also: tuple[str, ...] = ()) -> str:
    """The domcapabilities libvirt would print for a host: its model, then in libvirt spelling every
    guest feature the host has beyond it (plus ``also``: bits lscpu hides), and those it lacks."""
    from cpudb.inputs.xml import libvirt_maps

    flags = parse_file(dump_file).flags
    group, vendor = ("amd", "AMD") if "svm" in flags else ("intel", "Intel")
    catalog = current()
    libvirt = {e.qemu: e.libvirt for e in catalog.entries if e.qemu and e.libvirt and e.klass == "guest"}
    features = {f for flag, v, f, _ in catalog.flag_features() if flag in flags and v in ("any", group)}
    has = {libvirt[f] for f in features if f in libvirt} | set(also)
    defined = {libvirt[f] for f in libvirt_maps().models[model] if f in libvirt}
    return domcaps(model, vendor, require=sorted(has - defined), disable=sorted(defined - has))


CAPABILITIES = """<capabilities>
  <host>
    <uuid>00000000-0000-0000-0000-000000000000</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Cascadelake-Server-noTSX</model>
      <vendor>Intel</vendor>
      <microcode version='83898371'/>
      <signature family='6' model='85' stepping='7'/>
      <topology sockets='2' dies='1' cores='20' threads='2'/>
      <feature name='ds'/>
      <feature name='ss'/>
      <feature name='pdcm'/>
      <feature name='arch-capabilities'/>
      <feature name='mds-no'/>
      <feature name='cmt'/>
      <feature name='pku' policy='disable'/>
    </cpu>
  </host>
</capabilities>
"""


# --- libvirt XML -------------------------------------------------------------------------------


def test_domcapabilities_host_model_becomes_the_guest_view_and_kernel_flags():
    dump = parse_dump(
        domcaps("EPYC-Rome", "AMD", require=["x2apic", "amd-ssbd", "virt-ssbd", "cmp_legacy"], disable=["xsaves"]).encode(),
        "cmp-1.domcaps.xml",
    )
    assert dump.host == "cmp-1"
    assert dump.source_format == "virsh-domcapabilities"
    assert dump.guest_source == "virsh domcapabilities"
    assert dump.vendor == "AuthenticAMD"
    # libvirt spellings become QEMU names; the model expands through libvirt's definition
    assert {"amd-ssbd", "virt-ssbd", "cmp-legacy", "avx2", "clwb", "sha-ni"} <= dump.guest_features
    assert "xsaves" not in dump.guest_features  # policy='disable' removes a model feature
    # kernel flags as a current kernel prints them: amd-ssbd shows as the summary ssbd
    assert {"cmp_legacy", "avx2", "sha_ni", "ssbd", "virt_ssbd"} <= dump.flags
    assert "amd_ssbd" not in dump.flags and "xsaves" not in dump.flags


def test_capabilities_host_cpu_keeps_signature_microcode_topology_and_libvirt_only_features():
    dump = parse_dump(CAPABILITIES.encode(), "gold.caps.xml")
    assert (dump.source_format, dump.vendor, dump.family, dump.model, dump.stepping) == (
        "virsh-capabilities", "GenuineIntel", 6, 85, 7)
    assert dump.microcode == "0x5003003"
    assert (dump.sockets, dump.cores_per_socket, dump.threads_per_core) == (2, 20, 2)
    assert {"mds-no", "arch-capabilities", "avx512f", "pdcm"} <= dump.guest_features
    assert "pku" not in dump.guest_features and "hle" not in dump.guest_features  # noTSX, pku disabled
    assert "cqm" in dump.flags  # cmt: QEMU has no name for it, the kernel does
    assert "cmt" not in dump.guest_features


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><cpu>&b;</cpu>',
         "refused unsafe XML"),
        ("<domain type='kvm'><name>vm</name></domain>", "XML root <domain> is not virsh capabilities"),
        ("<cpu><arch>x86_64</arch><model>Skylake-Server-v", "malformed XML"),
        (domcaps("Neoverse-N1", "ARM", arch="aarch64"), "a aarch64 host; cpudb handles x86 only"),
        (domcaps("Pentium-Pro-9000", "Intel"), "libvirt CPU model 'Pentium-Pro-9000' is in neither"),
        ("<domainCapabilities><cpu><mode name='host-model' supported='no'/></cpu></domainCapabilities>",
         "without a supported host-model CPU"),
        ("<cpudata arch='x86'><cpuid eax_in='zz'/></cpudata>", "malformed value"),
    ],
)
def test_bad_xml_is_one_clear_error_naming_the_file(text, problem):
    with pytest.raises(DumpParseError) as info:
        parse_dump(text.encode(), "dumps/host.xml")
    assert str(info.value).startswith("dumps/host.xml")
    assert problem in str(info.value)


# --- raw CPUID -----------------------------------------------------------------------------------


def _cpuid_r(cpudata: Path) -> str:
    """The leaves of a libvirt cpudata file written the way `cpuid -r` prints them."""
    from defusedxml import ElementTree

    lines = ["CPU 0:"]
    for leaf in ElementTree.parse(str(cpudata)).getroot().iter("cpuid"):
        values = " ".join(f"{r}=0x{int(leaf.get(r), 16):08x}" for r in ("eax", "ebx", "ecx", "edx"))
        lines.append(f"   0x{int(leaf.get('eax_in'), 16):08x} 0x{int(leaf.get('ecx_in'), 16):02x}: {values}")
    return "\n".join(lines + ["CPU 1:", "   0x00000000 0x00: eax=0x0 ebx=0x0 ecx=0x0 edx=0x0", ""])


@requires_reference()
def test_cpuid_r_text_and_libvirt_cpudata_decode_to_the_same_flags():
    cpudata = CPUID_DUMPS / "x86_64-cpuid-EPYC-7713-64-Core.xml"
    from_xml = parse_file(cpudata)
    from_text = parse_dump(_cpuid_r(cpudata).encode(), "epyc-7713.cpuid")
    assert from_text.source_format == "cpuid-r" and from_xml.source_format == "libvirt-cpudata"
    assert from_text.flags == from_xml.flags
    assert (from_text.family, from_text.model, from_text.stepping) == (25, 1, 1)
    assert from_text.model_name == "AMD EPYC 7713 64-Core Processor"
    # lscpu of a Milan shows ssbd but hides the AMD_SSBD bit; raw CPUID has it
    assert "amd-ssbd" in from_text.guest_features and "ssbd" in from_text.flags


# Guest-class features where libvirt's host view (the -host.xml beside each CPUID dump) and the
# decoded CPUID disagree, and why. Everything else of class 'guest' must be equal.
HOST_VIEW_DIFFERENCES = {
    # CPUID 7.0 ECX[7] and EDX[20] are set, but libvirt's test data for these two Xeons leaves CET
    # out of the host view (the EPYC 7713 view lists cet-ss); cpudb keeps what CPUID says.
    "x86_64-cpuid-Xeon-6788P": ({"cet-ss", "cet-ibt"}, set()),
    "x86_64-cpuid-Xeon-Gold-6530": ({"cet-ss", "cet-ibt"}, set()),
}


@requires_reference()
@pytest.mark.parametrize("host_xml", sorted(p.name for p in CPUID_DUMPS.glob("*-host.xml")) if CPUID_DUMPS.is_dir() else [])
def test_decoded_cpuid_matches_libvirt_host_view_on_guest_features(host_xml):
    guest = {e.qemu for e in current().entries if e.qemu and e.klass == "guest"}
    stem = host_xml.removesuffix("-host.xml")
    decoded = parse_file(CPUID_DUMPS / f"{stem}.xml")
    view = parse_file(CPUID_DUMPS / host_xml)
    only_cpuid = (decoded.guest_features - view.guest_features) & guest
    only_libvirt = (view.guest_features - decoded.guest_features) & guest
    assert (only_cpuid, only_libvirt) == HOST_VIEW_DIFFERENCES.get(stem, (set(), set()))
    assert len(decoded.guest_features & view.guest_features & guest) > 80


# --- collected files (header + sections) -----------------------------------------------------------


def _bundle(host: str, lscpu: str, domcaps_xml: str | None = None, collected: str = "2026-11-20T10:00:00+00:00") -> str:
    parts = [f"hostname: {host}", f"collected: {collected}", "kernel: 6.1.0-27-amd64", "collector: cpudb 0.1.0"]
    if domcaps_xml is None:
        parts.append("# virsh domcapabilities: not collected (virsh: command not found)")
    parts += ["--- /proc/cpuinfo", lscpu.rstrip("\n")]
    if domcaps_xml:
        parts += ["--- virsh domcapabilities", domcaps_xml.rstrip("\n")]
    return "\n".join(parts) + "\n"


def test_a_collected_file_takes_kernel_flags_from_cpuinfo_and_the_guest_view_from_domcapabilities():
    cpuinfo = fixture("amd-epyc7763-1.txt").read_text()
    text = _bundle("milan-1", cpuinfo, domcaps("EPYC-Milan", "AMD", require=["amd-ssbd", "virt-ssbd"]))
    dump = parse_dump(text.encode(), "collected/milan-1.txt")
    plain = parse_file(fixture("amd-epyc7763-1.txt"))
    assert dump.host == "milan-1" and dump.source_format == "collect"
    assert dump.flags == plain.flags
    assert (dump.microcode, dump.model_name, dump.kernel) == ("0xa0011d3", "AMD EPYC 7763 64-Core Processor", "6.1.0-27-amd64")
    assert dump.guest_source == "virsh domcapabilities"
    assert {"amd-ssbd", "virt-ssbd"} <= dump.guest_features
    assert {line.kind for line in dump.extra} >= {"bugs"}


def test_a_collected_file_names_its_bad_section_and_line():
    cpuinfo = fixture("amd-epyc7763-1.txt").read_text()
    text = _bundle("milan-1", cpuinfo) + "--- nvidia-smi\nGPU 0\n"
    with pytest.raises(DumpParseError, match=r"milan-1.txt:\d+: unknown section '--- nvidia-smi'"):
        parse_dump(text.encode(), "milan-1.txt")


def _pool(tmp_path: Path, files: dict[str, str]):
    folder = tmp_path / "dumps"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    path = tmp_path / "cpudb.duckdb"
    ingest_paths(path, [folder])
    conn = db.open_read(path)
    fleet.select(conn, "")
    return conn


def test_with_guest_views_the_baseline_verifies_bits_lscpu_hides(tmp_path):
    rome, milan = fixture("amd-epyc7742-1.txt").read_text(), fixture("amd-epyc7763-1.txt").read_text()
    (tmp_path / "a").mkdir()
    plain = _pool(tmp_path / "a", {"rome.txt": _bundle("rome", rome), "milan.txt": _bundle("milan", milan)})
    # Without a guest view, amd-ssbd (hidden from /proc/cpuinfo) is proven by ssbd with ibrs on AMD
    # (data/kvm_given.yaml, hidden); the views below list it, and agree.
    without = compute(plain, "", Options(target="rhel-9")).recommended
    assert without.model == "EPYC-Rome-v3" and without.unverifiable == ()
    hidden = ("amd-ssbd", "virt-ssbd")  # lscpu shows ssbd for the first; KVM gives the second
    views = {
        "rome.txt": _bundle("rome", rome, host_model(fixture("amd-epyc7742-1.txt"), "EPYC-Rome", hidden)),
        "milan.txt": _bundle("milan", milan, host_model(fixture("amd-epyc7763-1.txt"), "EPYC-Milan", hidden)),
    }
    (tmp_path / "b").mkdir()
    conn = _pool(tmp_path / "b", views)
    result = compute(conn, "", Options(target="rhel-9"))
    assert result.recommended.model == "EPYC-Rome-v3"
    assert result.recommended.unverifiable == ()
    assert result.recommended.extra_flags == without.extra_flags
    rows = {r.host: r for r in fleet.selected_hosts(conn)}
    assert rows["rome"].guest_source == rows["milan"].guest_source == "virsh domcapabilities"


def test_a_separate_domcapabilities_file_gives_the_host_its_guest_view(tmp_path):
    milan = fixture("amd-epyc7763-1.txt").read_text()
    files = {
        "milan.txt": _bundle("milan", milan),
        "milan.domcaps.xml": domcaps("EPYC-Milan", "AMD", require=["amd-ssbd"]),
    }
    (tmp_path / "c").mkdir()
    conn = _pool(tmp_path / "c", files)
    [row] = fleet.selected_hosts(conn)
    # the kernel flags stay those of the collected file; the guest view is the XML file's
    assert row.source_format == "collect" and row.snapshots == 2
    assert row.guest_source == "virsh domcapabilities" and row.guest_path.endswith("milan.domcaps.xml")
