"""Parsers: every real fixture, every supported format, every kind of bad input."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import DATA, FIXTURES, fixture
from cpudb.errors import DumpParseError
from cpudb.inputs.parse import host_name_from_path, parse_dump, parse_file

# (file, vendor, flag count, format, flags it must have, flags it must not have).
# Flag counts were checked independently with grep | tr | wc on each file's flags line.
FIXTURE_FACTS = [
    ("amd-epyc7451-1.txt", "AuthenticAMD", 111, "lscpu", {"sha_ni", "avx2", "svm"}, {"x2apic", "clwb"}),
    ("amd-epyc7742-1.txt", "AuthenticAMD", 132, "lscpu", {"sha_ni", "x2apic", "clwb", "wbnoinvd"}, {"avx512f"}),
    ("amd-epyc7763-1.txt", "AuthenticAMD", 137, "cpuinfo", {"pku", "vaes", "invpcid"}, {"erms", "fsrm"}),
    ("amd-epyc7v12-vm-1.txt", "AuthenticAMD", 81, "lscpu", {"hypervisor", "eagerfpu", "retpoline_amd"}, {"svm"}),
    ("amd-epyc9575f-1.txt", "AuthenticAMD", 163, "cpuinfo", {"avx512_vp2intersect", "amd_lbr_pmc_freeze"}, set()),
    ("amd-epyc9654-1.txt", "AuthenticAMD", 156, "cpuinfo", {"avx512f", "avx512_bf16", "sev_es"}, {"cppc"}),
    ("amd-epyc9754-1.txt", "AuthenticAMD", 162, "cpuinfo", {"avx512_bf16", "user_shstk", "ibrs_enhanced"}, set()),
    ("hygon-c86-7285h-1.txt", "HygonGenuine", 111, "lscpu", {"perfctr_l2", "retpoline_amd", "art"}, {"xsaves", "cpuid"}),
    ("intel-e5-2650v2-1.txt", "GenuineIntel", 89, "cpuinfo", {"spec_ctrl", "intel_stibp", "eagerfpu"}, {"avx2"}),
    ("intel-e5-2670-1.txt", "GenuineIntel", 86, "cpuinfo", {"pti", "md_clear", "flush_l1d"}, {"avx2"}),
    ("intel-e5-2680v3-1.txt", "GenuineIntel", 100, "cpuinfo", {"avx2", "fma"}, {"hle", "rtm"}),
    ("intel-e5-2686v4-vm-1.txt", "GenuineIntel", 64, "lscpu", {"hypervisor", "pse36", "tsc_deadline_timer", "pti"}, {"rdseed", "hle"}),
    ("intel-e5-2690v4-1.txt", "GenuineIntel", 111, "cpuinfo", {"hle", "rtm", "rdseed"}, {"avx512f"}),
    ("intel-gold5318y-1.txt", "GenuineIntel", 149, "lscpu", {"avx512_vnni", "la57", "arch_capabilities"}, {"hle"}),
    ("intel-gold6132-1.txt", "GenuineIntel", 125, "cpuinfo", {"hle", "rtm", "mpx", "avx512f"}, {"avx512_vnni"}),
    ("intel-gold6230-1.txt", "GenuineIntel", 136, "cpuinfo", {"hle", "rtm", "avx512_vnni"}, set()),
    ("intel-gold6230-2.txt", "GenuineIntel", 134, "cpuinfo", {"avx512_vnni", "md_clear"}, {"hle", "rtm"}),
    ("intel-plat8369hc-vm-1.txt", "GenuineIntel", 86, "cpuinfo", {"avx512_bf16", "hypervisor"}, {"hle", "rtm"}),
    ("intel-plat8480p-1.txt", "GenuineIntel", 172, "cpuinfo", {"amx_tile", "amx_bf16", "avx512_fp16"}, {"hle"}),
    ("intel-plat8575c-vm-1.txt", "GenuineIntel", 118, "lscpu", {"hle", "rtm", "hypervisor", "hwp"}, {"amx_tile"}),
    ("intel-qemu-cascadelake-vm-1.txt", "GenuineIntel", 86, "cpuinfo", {"hle", "avx512_vnni", "hypervisor"}, {"md_clear"}),
    ("intel-xeon6972p-1.txt", "GenuineIntel", 173, "cpuinfo", {"amx_tile", "amx_int8"}, {"amx_fp16", "prefetchiti"}),
    ("qemu-virtualcpu-vm-2.txt", "GenuineIntel", 37, "cpuinfo", {"hypervisor", "pti", "constant_tsc"}, {"rep_good"}),
]


def test_every_fixture_is_covered():
    assert {name for name, *_ in FIXTURE_FACTS} == {p.name for p in FIXTURES.glob("*.txt")}


@pytest.mark.parametrize(("name", "vendor", "count", "fmt", "present", "absent"), FIXTURE_FACTS)
def test_fixture_parses_with_exact_facts(name, vendor, count, fmt, present, absent):
    dump = parse_file(fixture(name))
    assert dump.vendor == vendor
    assert len(dump.flags) == count
    assert dump.source_format == fmt
    assert present <= dump.flags
    assert not (absent & dump.flags)
    assert dump.host == name.removesuffix(".txt")
    assert dump.is_guest == ("-vm-" in name)


def test_lscpu_text_fields_old_layout():
    dump = parse_file(fixture("amd-epyc7742-1.txt"))
    assert (dump.model_name, dump.family, dump.model, dump.stepping) == ("AMD EPYC 7742 64-Core Processor", 23, 49, 0)
    assert (dump.sockets, dump.cores_per_socket, dump.threads_per_core) == (2, 64, 1)
    assert dump.hypervisor_vendor is None and dump.microcode is None


def test_lscpu_text_nested_layout_keeps_vulnerabilities_with_wrapped_values():
    dump = parse_file(fixture("intel-gold5318y-1.txt"))
    assert (dump.family, dump.model, dump.stepping, dump.sockets) == (6, 106, 6, 2)
    vulnerabilities = {line.name: line.value for line in dump.extra if line.kind == "vulnerability"}
    assert vulnerabilities["Mds"] == "Not affected"
    assert vulnerabilities["Spectre v1"] == "Mitigation; usercopy/swapgs barriers and __user pointer sanitization"
    assert len(vulnerabilities) == 13


def test_lscpu_guest_records_hypervisor_vendor():
    assert parse_file(fixture("amd-epyc7v12-vm-1.txt")).hypervisor_vendor == "Microsoft"
    assert parse_file(fixture("intel-plat8575c-vm-1.txt")).hypervisor_vendor == "KVM"


def test_cpuinfo_keeps_microcode_bugs_and_vmx_flags():
    dump = parse_file(fixture("intel-gold6230-2.txt"))
    assert dump.microcode == "0x5002f01"
    extra = {line.kind: line.value for line in dump.extra}
    assert extra["bugs"] == "spectre_v1 spectre_v2 spec_store_bypass swapgs taa itlb_multihit"
    assert extra["vmx_flags"].startswith("vnmi preemption_timer posted_intr")
    assert (dump.cores_per_socket, dump.threads_per_core) == (4, 1)


def test_cpuinfo_blocks_that_differ_keep_the_intersection_and_say_so():
    dump = parse_file(DATA / "cpuinfo-blocks-differ.cpuinfo")
    assert "avx512_vnni" not in dump.flags
    assert len(dump.flags) == 133
    assert dump.notes == (
        "processor blocks differ (2 blocks); kept the flags all have, dropped 1 only some have: avx512_vnni",
    )


def test_lscpu_json_flat_and_nested_forms():
    flat = parse_file(DATA / "lscpu-json-flat.json")
    assert flat.source_format == "lscpu-json"
    assert flat.flags == parse_file(fixture("amd-epyc7742-1.txt")).flags
    assert (flat.vendor, flat.family, flat.model) == ("AuthenticAMD", 23, 49)
    nested = parse_file(DATA / "lscpu-json-nested.json")
    assert nested.flags == parse_file(fixture("intel-gold5318y-1.txt")).flags
    assert (nested.vendor, nested.model_name, nested.stepping) == (
        "GenuineIntel",
        "Intel(R) Xeon(R) Gold 5318Y CPU @ 2.10GHz",
        6,
    )
    assert {line.name for line in nested.extra} >= {"Mds", "Spectre v2"}


def test_brief_flag_list():
    dump = parse_file(DATA / "source.flags-lscpu.sorted")
    assert dump.source_format == "flag-list"
    assert dump.host == "source"
    assert dump.vendor == "GenuineIntel"
    assert dump.notes == ("flag list without a vendor; GenuineIntel inferred from vendor-specific flags",)
    assert dump.flags == parse_file(fixture("intel-e5-2690v4-1.txt")).flags


def test_wrapped_flags_are_rejoined_with_the_dictionary():
    original = parse_file(fixture("amd-epyc7742-1.txt")).flags
    vocabulary = frozenset().union(*(parse_file(p).flags for p in FIXTURES.glob("*.txt")))
    dump = parse_file(DATA / "lscpu-wrapped-flags.lscpu", known_flags=vocabulary)
    assert dump.flags == original


def test_wrapped_flags_without_a_dictionary_keep_the_pieces():
    dump = parse_file(DATA / "lscpu-wrapped-flags.lscpu")
    assert {"cmo", "v", "ssse", "3"} <= dump.flags


def test_header_lines_give_host_collection_time_and_kernel():
    dump = parse_file(DATA / "header-hostname.lscpu")
    assert dump.host == "compute-07.example.net"
    assert dump.collected_at == datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert dump.kernel == "5.14.0-503.el9.x86_64"
    assert len(dump.flags) == 132


@pytest.mark.parametrize(
    ("file_name", "host"),
    [
        ("cmp-rome-01.lscpu", "cmp-rome-01"),
        ("cmp-rome-01.cpuinfo.txt", "cmp-rome-01"),
        ("source.flags-lscpu.sorted", "source"),
        ("node7.example.com", "node7.example.com"),
    ],
)
def test_host_name_from_file_name(file_name, host):
    assert host_name_from_path(Path("/x") / file_name) == host


def test_crlf_line_endings_parse_like_lf():
    data = fixture("intel-gold6230-1.txt").read_bytes()
    assert parse_dump(data.replace(b"\n", b"\r\n"), "crlf.cpuinfo").flags == parse_dump(data, "lf.cpuinfo").flags


BAD = DATA / "bad"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.lscpu", r"empty\.lscpu: empty file$"),
        ("binary.lscpu", r"binary\.lscpu: binary data \(NUL bytes\)"),
        ("no-flags-line.lscpu", r'no-flags-line\.lscpu: no "Flags:" line, found 29 other field\(s\): .* \(is this lscpu output from an x86-64 host\?\)$'),
        ("aarch64.lscpu", r"aarch64\.lscpu: aarch64 dump: cpudb analyses x86-64 hosts only$"),
        ("localized-de.lscpu", r"localized-de\.lscpu: lscpu output in another language \(collect it with LC_ALL=C lscpu\)$"),
        ("localized-ja.lscpu", r"localized-ja\.lscpu: lscpu output in another language"),
        ("truncated.lscpu", r"truncated\.lscpu:30: truncated: the file ends inside the flags line"),
        ("invalid-utf8.lscpu", r"invalid-utf8\.lscpu: not UTF-8 text \(invalid byte at offset 356\)$"),
        ("two-flags-lines.lscpu", r"two-flags-lines\.lscpu:31: two Flags: lines \(lines 30 and 31\)"),
    ],
)
def test_bad_input_gets_an_error_naming_the_file(name, message):
    with pytest.raises(DumpParseError, match=message):
        parse_file(BAD / name)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"processor\t: 0\nvendor_id\t: ARM\nFeatures\t: fp asimd evtstrm\nCPU implementer\t: 0x41\n", "aarch64 /proc/cpuinfo"),
        (b"vendor_id       : IBM/S390\nprocessor 0: version = FF\nprocessor : 0\nfeatures\t: esan3 zarch\n", "s390x /proc/cpuinfo"),
        (b"processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\nplatform\t: PowerNV\n", "ppc64 /proc/cpuinfo"),
        (b"Architecture: ppc64le\nByte Order: Little Endian\nModel name: POWER9\n", "ppc64le dump"),
        (b"Architecture: x86_64\nFlags:\nModel name: x\n", "the flags line is empty"),
        (b"hostname: bad name\n" + fixture("amd-epyc7742-1.txt").read_bytes(), "invalid host name 'bad name'"),
        (b"collected: yesterday\nfpu\n", "collected: 'yesterday' is not an ISO 8601 time"),
        (b"just some prose, not a dump\n", "neither lscpu, /proc/cpuinfo nor a flag list"),
        (b'{"lscpu": [{"field": "Flags:", "data": "fpu vme', "invalid or truncated JSON"),
        (b"x" * 70000 + b"\n", "line is 70,000 characters long"),
        (b"Flags: sse sse2 vme\n", "no x86 base flags"),
    ],
)
def test_more_bad_inputs(content, message):
    with pytest.raises(DumpParseError, match=message):
        parse_dump(content, "some.dump")


def test_oversized_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.cpuinfo"
    with big.open("wb") as out:
        out.truncate(10 * 1024 * 1024)
    with pytest.raises(DumpParseError, match=r"huge\.cpuinfo: file too large \(10\.5 MB"):
        parse_file(big)


# --- the fast line splitting takes exactly the lines the reference patterns take (issue 14) ------

from hypothesis import given, settings, strategies as st  # noqa: E402

from cpudb.inputs import cpuinfo as _cpuinfo
from cpudb.inputs import lscpu as _lscpu  # noqa: E402

_LINE_CHARS = st.sampled_from(list("ab :\t\x0b\x0c\u00a0\u2028 fx1_"))


@settings(max_examples=5000, deadline=None)
@given(st.text(_LINE_CHARS, max_size=14))
def test_cpuinfo_lines_split_as_the_reference_pattern_splits_them(line):
    match = _cpuinfo._CPUINFO_LINE.match(line)
    expected = None if match is None else (match.group(1).strip().lower(), match.group(2))
    assert _cpuinfo.split_cpuinfo_line(line) == expected


@settings(max_examples=5000, deadline=None)
@given(st.text(_LINE_CHARS, max_size=14))
def test_lscpu_lines_split_as_the_reference_pattern_splits_them(line):
    match = _lscpu._LSCPU_LINE.match(line)
    expected = None if match is None else (len(match.group(1)), match.group(2).strip(), match.group(3))
    assert _lscpu.split_lscpu_line(line) == expected
