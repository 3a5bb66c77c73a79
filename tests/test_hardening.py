"""Bad input, fuzzing, crash safety and concurrency: cpudb never crashes, corrupts its database or
misleads on damaged dumps."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA, FIXTURES, ROOT, fixture
from cpudb.cli.main import main
from cpudb.errors import CpudbError
from cpudb.inputs.parse import HostDump, parse_dump
from cpudb.store import db, selection
from cpudb.store.ingest import ingest_paths

BAD = DATA / "bad"
CPUDB = [sys.executable, "-m", "cpudb"]

# Every file of the corpus, with what the one line on stderr must say about it.
CORPUS = {
    "aarch64.lscpu": "aarch64 dump: cpudb analyses x86-64 hosts only",
    "bidi-host-name.lscpu": "invisible or control characters (U+202E)",
    "billion-laughs.xml": "refused unsafe XML (EntitiesForbidden",
    "deep-nesting.json": "JSON nested too deeply",
    "binary.lscpu": "binary data (NUL bytes)",
    "empty.lscpu": "empty file",
    "guest-without-flags.lscpu": "the flags line is empty (a guest whose hypervisor hides CPUID?)",
    "invalid-utf8.lscpu": "not UTF-8 text (invalid byte at offset 356)",
    "localized-de.lscpu": "lscpu output in another language (collect it with LC_ALL=C lscpu)",
    "localized-ja.lscpu": "lscpu output in another language (collect it with LC_ALL=C lscpu)",
    "no-flags-line.lscpu": 'no "Flags:" line, found 29 other field(s): \'Architecture\'',
    "nul-bytes.lscpu": "binary data (NUL bytes)",
    "ppc64le.lscpu": "ppc64le dump: cpudb analyses x86-64 hosts only",
    "s390x.lscpu": "s390x dump: cpudb analyses x86-64 hosts only",
    "truncated.json": "invalid or truncated JSON",
    "truncated.lscpu": "truncated: the file ends inside the flags line",
    "two-flags-lines.lscpu": "two Flags: lines (lines 30 and 31)",
    "yaml-with-tags.yaml": 'no "Flags:" line, found 3 other field(s)',
    "zero-width-host-name.lscpu": "invisible or control characters (U+200B)",
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def existing_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "cpudb.duckdb"
    ingest_paths(path, [fixture("amd-epyc7742-1.txt")])
    return path


def test_the_corpus_is_complete():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CORPUS)


def _generated(tmp_path: Path) -> dict[Path, str]:
    """The two inputs too big to keep in git: a 100 KB line and a 10 MB file."""
    huge_line = tmp_path / "huge-line.lscpu"
    huge_line.write_text("Architecture: x86_64\nFlags: " + "fpu " * 25_000 + "\n")
    ten_mb = tmp_path / "ten-mb.cpuinfo"
    block = fixture("intel-gold6230-1.txt").read_text()
    with ten_mb.open("w") as out:
        while out.tell() < 10 * 1024 * 1024:
            out.write(block + "\n")
    return {huge_line: "line is 100,007 characters long", ten_mb: "file too large (10.5 MB"}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_bad_input_through_ingest_is_one_line_exit_2_and_no_change(name, existing_db, tmp_path, capsys):
    copy = tmp_path / "cpudb.duckdb"
    shutil.copyfile(existing_db, copy)
    before = _digest(copy)
    assert main(["ingest", "--quiet", "--db", str(copy), str(BAD / name)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"cpudb: error: {BAD / name}")
    assert CORPUS[name] in err[0]
    assert _digest(copy) == before


def test_generated_huge_inputs_are_refused_the_same_way(existing_db, tmp_path, capsys):
    copy = tmp_path / "cpudb.duckdb"
    shutil.copyfile(existing_db, copy)
    before = _digest(copy)
    for path, message in _generated(tmp_path).items():
        assert main(["ingest", "--quiet", "--db", str(copy), str(path)]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith(f"cpudb: error: {path}") and message in line
    assert _digest(copy) == before


def test_the_whole_corpus_in_one_run_lists_every_file_and_no_traceback(existing_db, tmp_path):
    copy = tmp_path / "cpudb.duckdb"
    shutil.copyfile(existing_db, copy)
    before = _digest(copy)
    run = subprocess.run([*CPUDB, "ingest", "--quiet", "--db", str(copy), str(BAD)], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == len(CORPUS) + 1  # one per file, then the summary
    assert lines[-1].endswith(f"{len(CORPUS)} dump(s) failed to parse, nothing was ingested (use --skip-bad to ingest the rest)")
    assert _digest(copy) == before


def test_a_hostile_inventory_is_refused_without_running_its_tags(existing_db, capsys):
    marker = Path("/tmp/cpudb-pwned")
    marker.unlink(missing_ok=True)
    code = main(["baseline", "--db", str(existing_db), "--inventory", str(BAD / "yaml-with-tags.yaml"), "@amd"])
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"cpudb: error: {BAD / 'yaml-with-tags.yaml'}: not a valid inventory")
    assert not marker.exists()


# --- damaged but unambiguous: accepted, and read right ---------------------------------------------


def test_mixed_line_endings_are_read_like_clean_ones(tmp_path):
    clean = fixture("amd-epyc7742-1.txt").read_bytes()
    lines = clean.split(b"\n")
    mixed = b"".join(line + (b"\r\n", b"\n", b"\r")[i % 3] for i, line in enumerate(lines))
    assert parse_dump(mixed, "mixed.lscpu").flags == parse_dump(clean, "clean.lscpu").flags


def test_a_wrapped_flags_line_is_rejoined(tmp_path):
    # A wiki wrapped the Flags line in the middle of words; the dictionary tells where words end.
    result = ingest_paths(tmp_path / "c.duckdb", [DATA / "lscpu-wrapped-flags.lscpu"])
    assert result.added == 1


# --- fuzzing: any input gives a record or a CpudbError, never another exception ------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.txt"))[:8]] + [
    (DATA / name).read_bytes() for name in ("lscpu-json-flat.json", "lscpu-json-nested.json", "source.flags-lscpu.sorted")
]
XML_SEED = b"""<domainCapabilities><arch>x86_64</arch><cpu><mode name='host-model' supported='yes'>
<model fallback='forbid'>EPYC-Rome</model><vendor>AMD</vendor><feature policy='require' name='x2apic'/>
</mode></cpu></domainCapabilities>
"""
CPUID_SEED = b"CPU 0:\n   0x00000000 0x00: eax=0x00000010 ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65\n" \
             b"   0x00000001 0x00: eax=0x00830f10 ebx=0x00400800 ecx=0x7ed8320b edx=0x178bfbff\n"
BUNDLE_SEED = b"hostname: h\ncollected: 2026-01-01T00:00:00Z\n--- /proc/cpuinfo\n" + fixture("intel-gold6230-1.txt").read_bytes()


def _parses_or_refuses(data: bytes) -> None:
    try:
        result = parse_dump(data, "fuzz.dump")
    except CpudbError:
        return
    assert isinstance(result, HostDump)
    assert result.flags and all(isinstance(f, str) for f in result.flags)


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_any_bytes(data):
    _parses_or_refuses(data)


@FUZZ
@given(st.text(max_size=2048))
def test_fuzz_any_text(text):
    _parses_or_refuses(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.sampled_from(SEEDS + [XML_SEED, CPUID_SEED, BUNDLE_SEED]), st.data())
def test_fuzz_damaged_real_dumps(seed, data):
    """Real dumps cut, spliced, with bytes flipped or lines repeated: the damage seen in tickets."""
    damage = data.draw(st.sampled_from(["cut", "flip", "insert", "repeat", "delete-line"]))
    position = data.draw(st.integers(0, len(seed)))
    if damage == "cut":
        damaged = seed[:position]
    elif damage == "flip":
        byte = data.draw(st.integers(0, 255))
        damaged = seed[:position] + bytes([byte]) + seed[position + 1 :]
    elif damage == "insert":
        damaged = seed[:position] + data.draw(st.binary(min_size=1, max_size=64)) + seed[position:]
    else:
        lines = seed.split(b"\n")
        index = data.draw(st.integers(0, len(lines) - 1))
        lines[index:index + 1] = [lines[index]] * (2 if damage == "repeat" else 0)
        damaged = b"\n".join(lines)
    _parses_or_refuses(damaged)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(json_values)
def test_fuzz_json_shapes(value):
    _parses_or_refuses(json.dumps({"lscpu": value}).encode())
    _parses_or_refuses(json.dumps(value).encode())


@FUZZ
@given(st.text(alphabet="<>/='\" abcdefghijklmnopqrstuvwxyz_-0123456789", max_size=300))
def test_fuzz_xml_like_text(text):
    _parses_or_refuses(("<" + text).encode())


@FUZZ
@given(st.text(max_size=200), st.lists(st.sampled_from(["cmp-1", "cmp-2", "gpu-7", "ref-x"]), max_size=4))
def test_fuzz_selections(text, hosts):
    groups = {"amd": ["cmp-*"], "loop": ["@loop"]}
    try:
        selection.resolve(text, hosts, groups, ["ref:genoa"])
    except CpudbError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_inventory_files(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("inv") / "inventory.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        selection.load_inventory(path)
    except CpudbError:
        pass


# --- crash safety and concurrency -----------------------------------------------------------------


def test_an_ingest_killed_midway_leaves_the_previous_database_whole(existing_db, tmp_path):
    from cpudb.build.synthetic import generate

    copy = tmp_path / "cpudb.duckdb"
    shutil.copyfile(existing_db, copy)
    before = _digest(copy)
    generate(6000, tmp_path / "fleet", seed=3)
    process = subprocess.Popen([*CPUDB, "ingest", "--quiet", "--db", str(copy), str(tmp_path / "fleet")],
                               cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 30
    # Kill it while it works on its private copy of the database.
    while not list(tmp_path.glob(".cpudb.duckdb.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert _digest(copy) == before  # untouched
    conn = db.open_read(copy)
    assert conn.execute("SELECT host FROM hosts WHERE kind = 'host'").fetchall() == [("amd-epyc7742-1",)]
    conn.close()
    # The next writer takes the lock the dead one held and clears its leftover copy.
    result = ingest_paths(copy, [tmp_path / "fleet"])
    assert result.added == 6000
    assert not list(tmp_path.glob(".cpudb.duckdb.tmp-*"))


def test_a_second_writer_is_told_the_database_is_in_use_and_readers_go_on(existing_db, tmp_path):
    copy = tmp_path / "cpudb.duckdb"
    shutil.copyfile(existing_db, copy)
    with db.write(copy):
        writer = subprocess.run([*CPUDB, "ingest", "--db", str(copy), str(fixture("amd-epyc7763-1.txt"))],
                                capture_output=True, text=True, cwd=ROOT)
        reader = subprocess.run([*CPUDB, "hosts", "--db", str(copy), "--format", "csv"],
                                capture_output=True, text=True, cwd=ROOT)
    assert writer.returncode == 2
    [line] = writer.stderr.splitlines()
    assert line == f"cpudb: error: {copy}: database is in use: cpudb pid {os.getpid()} is writing to it; " \
                   "try again when it finishes"
    assert reader.returncode == 0 and "amd-epyc7742-1" in reader.stdout


def test_reports_fetch_nothing(tmp_path):
    from cpudb.outputs.report import render_pdf

    pdf = render_pdf('<html><body><img src="http://198.51.100.7/x.png">'
                     '<link rel="stylesheet" href="https://198.51.100.7/a.css"><p>offline</p></body></html>')
    assert pdf.startswith(b"%PDF")  # rendered without the image or the stylesheet, and without asking
