"""Faults a hostile tester found (issue 13): each reproduced here, each ending in one clear line."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time

import pytest

from conftest import ROOT, SAMPLE_FLEET
from cpudb import errors
from cpudb.cli.main import main
from cpudb.errors import CpudbError, DumpParseError, IngestError
from cpudb.inputs.parse import parse_dump, parse_file
from cpudb.store import selection

CPUDB = [sys.executable, "-m", "cpudb"]


def _every_error_class(base=CpudbError):
    for cls in base.__subclasses__():
        yield cls
        yield from _every_error_class(cls)


def _instance(cls):
    if issubclass(cls, DumpParseError):
        return cls("dumps/a.lscpu", "no flags", 3)
    if issubclass(cls, IngestError):
        return cls([DumpParseError("a", "bad", 1), DumpParseError("b", "worse")])
    return cls("dumps/a.lscpu: something is wrong")


@pytest.mark.parametrize("cls", [CpudbError, *_every_error_class()], ids=lambda c: c.__name__)
def test_every_error_survives_pickling(cls):
    # Worker processes of a large ingest raise these; the parent must rebuild them.
    error = _instance(cls)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls and str(again) == str(error)
    assert {name for name in dir(errors) if name.endswith("Error")} >= {c.__name__ for c in _every_error_class()}


@pytest.mark.slow
def test_a_bad_dump_in_a_parallel_ingest_is_one_line(tmp_path):
    from cpudb.build.synthetic import generate
    from cpudb.store.ingest import PARALLEL_THRESHOLD

    dumps = tmp_path / "dumps"
    generate(PARALLEL_THRESHOLD, dumps, seed=3)
    (dumps / "zz-bad.lscpu").write_text("Architecture: x86_64\nModel name: x\n")
    db = tmp_path / "fleet.duckdb"
    run = subprocess.run([*CPUDB, "ingest", "--quiet", "--db", str(db), str(dumps)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [f"cpudb: error: {dumps / 'zz-bad.lscpu'}: no \"Flags:\" line, found 2 other "
                                       "field(s): 'Architecture', 'Model name' (is this lscpu output from an x86-64 host?)"]
    assert not db.exists()
    skip = subprocess.run([*CPUDB, "ingest", "--quiet", "--skip-bad", "--db", str(db), str(dumps)], capture_output=True,
                          text=True, cwd=ROOT)
    assert "Traceback" not in skip.stderr and "zz-bad.lscpu" in skip.stderr
    assert main(["hosts", "--db", str(db), "--format", "csv"]) == 0


def test_a_partial_cpuinfo_is_read_as_cpuinfo():
    text = ("model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\n"
            "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge cmov sse sse2 lm avx2\n")
    dump = parse_dump(text.encode(), "cmp-x.cpuinfo")
    assert dump.source_format == "cpuinfo" and "avx2" in dump.flags
    assert dump.model_name == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"


def test_a_refused_lscpu_file_says_what_was_found():
    with pytest.raises(DumpParseError, match=r"no \"Flags:\" line, found 1 other field\(s\): 'Architecture'"):
        parse_dump(b"Architecture: x86_64\n", "a.lscpu")


def test_special_files_are_refused_without_reading_them(tmp_path):
    fifo = tmp_path / "pipe.lscpu"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.lscpu"
    zero.symlink_to("/dev/zero")
    with pytest.raises(DumpParseError, match=r"not a regular file \(a FIFO\)"):
        parse_file(fifo)
    with pytest.raises(DumpParseError, match=r"not a regular file \(a character device\)"):
        parse_file(zero)
    run = subprocess.run([*CPUDB, "ingest", "--quiet", "--db", str(tmp_path / "x.duckdb"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 3


def test_deep_json_is_one_line():
    with pytest.raises(DumpParseError, match="JSON nested too deeply"):
        parse_dump(b"[" * 5000 + b"]" * 5000 + b"\n", "deep.json")


def test_an_inventory_that_is_not_utf8_is_one_line(tmp_path, capsys):
    inventory = tmp_path / "inventory.yaml"
    inventory.write_bytes("groups:\n  caf\xe9: [cmp-*]\n".encode("latin-1"))
    assert main(["hosts", "--dumps", str(SAMPLE_FLEET), "--inventory", str(inventory), "@x"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"cpudb: error: {inventory}: the inventory is not UTF-8 text (invalid byte at offset 13)"


def test_a_group_bomb_expands_each_group_once():
    groups = {"g0": ["cmp-*", "!cmp-bdw-01"]} | {f"g{i}": [f"@g{i - 1}"] * 10 for i in range(1, 30)}
    # 10**29 items if each use of a group were expanded again (depth 9 used to hang).
    chosen = selection.resolve("@g29", ["cmp-a", "cmp-bdw-01", "other"], groups)
    assert chosen.hosts == ("cmp-a",)
    wide = {"big": [f"h{i}" for i in range(selection.MAX_EXPANDED_ITEMS + 1)]}
    with pytest.raises(CpudbError, match="expands to more than"):
        selection.resolve("@big", ["h1"], wide)


def test_two_files_for_one_host_in_one_ingest_are_refused_unless_collected_times_order_them(tmp_path, capsys):
    from conftest import fixture

    folder = tmp_path / "dumps"
    folder.mkdir()
    intel, amd = fixture("intel-gold6230-1.txt").read_text(), fixture("amd-epyc7742-1.txt").read_text()
    (folder / "a.lscpu").write_text("hostname: dup\n" + intel)
    (folder / "b.lscpu").write_text("hostname: dup\n" + amd)
    db = tmp_path / "x.duckdb"
    assert main(["ingest", "--quiet", "--db", str(db), str(folder)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (f"cpudb: error: {folder / 'b.lscpu'}: host dup is also the host of {folder / 'a.lscpu'}, and no "
                    "'collected:' times say which is newer (rename one, or ingest them one at a time)")
    assert not db.exists()
    # With collection times the newer one is the host's latest, whatever the argument order.
    (folder / "a.lscpu").write_text("hostname: dup\ncollected: 2026-12-01T10:00:00Z\n" + intel)
    (folder / "b.lscpu").write_text("hostname: dup\ncollected: 2026-11-01T10:00:00Z\n" + amd)
    assert main(["ingest", "--quiet", "--db", str(db), str(folder / "b.lscpu"), str(folder / "a.lscpu")]) == 0
    capsys.readouterr()
    assert main(["hosts", "--db", str(db), "--format", "csv"]) == 0
    assert "GenuineIntel" in capsys.readouterr().out


def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc to find the workers")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_killed_parallel_ingest_leaves_no_worker_and_no_lock(tmp_path, how):
    import signal

    from cpudb.build.synthetic import generate
    from cpudb.store.ingest import PARALLEL_THRESHOLD

    dumps = tmp_path / "dumps"
    generate(PARALLEL_THRESHOLD * 3, dumps, seed=5)
    db = tmp_path / "fleet.duckdb"
    ingest = subprocess.Popen([*CPUDB, "ingest", "--quiet", "--db", str(db), str(dumps)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    for _ in range(600):  # until the parse workers are running (at most 60 s)
        workers = _children(ingest.pid)
        if len(workers) >= 2 or ingest.poll() is not None:
            break
        time.sleep(0.1)
    assert ingest.poll() is None and workers, "the ingest ended before its workers could be seen"
    ingest.send_signal(getattr(signal, how))
    ingest.wait(timeout=30)
    for _ in range(100):
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    assert main(["ingest", "--quiet", "--db", str(db), str(SAMPLE_FLEET)]) == 0  # no stale lock
    assert not list(tmp_path.glob(".fleet.duckdb.tmp-*"))  # the dead writer's copy is cleaned


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_under_stdout_is_one_line_and_exit_2():
    with open("/dev/full", "w") as full:
        run = subprocess.run([*CPUDB, "hosts", "--dumps", str(SAMPLE_FLEET), "--format", "csv"], stdout=full,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["cpudb: error: cannot write the output: No space left on device; nothing was replaced"]


def test_an_interrupted_query_exits_130(capsys):
    import threading

    import duckdb

    from cpudb.cli.main import fault_exit

    conn = duckdb.connect()
    caught: list[BaseException] = []

    def long_query():
        try:
            conn.execute("SELECT count(*) FROM range(10000000000) a, range(10) b WHERE a.range % 7 = b.range").fetchall()
        except BaseException as exc:  # noqa: BLE001 - the exception is the result
            caught.append(exc)

    worker = threading.Thread(target=long_query)
    worker.start()
    time.sleep(0.5)
    conn.interrupt()  # what DuckDB does on Ctrl-C
    worker.join(timeout=30)
    assert caught, "the query was not interrupted"
    assert fault_exit(caught[0]) == 130
    assert capsys.readouterr().err == "cpudb: interrupted\n"
    assert fault_exit(ValueError("a bug")) is None


@pytest.mark.slow
def test_sigint_at_any_moment_of_an_ingest_exits_130_or_0_and_keeps_the_database(tmp_path):
    """Ctrl-C at 24 moments spread over a whole ingest, final flush included."""
    import signal

    import duckdb

    from cpudb.build.synthetic import generate

    dumps = tmp_path / "dumps"
    generate(300, dumps, seed=9)
    db = tmp_path / "fleet.duckdb"
    assert main(["ingest", "--quiet", "--db", str(db), str(SAMPLE_FLEET)]) == 0
    old = db.read_bytes()
    command = [*CPUDB, "ingest", "--quiet", "--db", str(db), str(dumps)]

    def hosts() -> int:
        with duckdb.connect(str(db), read_only=True) as conn:
            return conn.execute("SELECT count(DISTINCT host) FROM hosts").fetchone()[0]

    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    whole = time.monotonic() - start
    new_hosts = hosts()
    db.write_bytes(old)
    old_hosts = hosts()
    outcomes = set()
    for attempt in range(24):
        run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(whole * (0.15 + 0.9 * attempt / 23))  # from start-up to past the end of a normal run
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
        assert "Traceback" not in err and "Error:" not in err, err
        assert run.returncode in (0, 130), (attempt, run.returncode, err)
        if run.returncode == 130:
            assert err == "cpudb: interrupted\n"
            assert db.read_bytes() == old or hosts() == new_hosts  # the old database, or the new one whole
        else:
            assert hosts() == new_hosts
        assert not list(tmp_path.glob(".fleet.duckdb.tmp-*"))
        outcomes.add(run.returncode)
        db.write_bytes(old)
        assert hosts() == old_hosts
    assert 130 in outcomes  # the signal did arrive while the ingest ran


def test_a_hostile_file_name_stays_one_escaped_line_in_errors(tmp_path):
    # A dump's name comes from whoever wrote the folder: an escape sequence, a line break and a
    # right-to-left override in it must not reach the terminal as such.
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    bad = dumps / "evil\x1b[2J\nfake: ok\u202e.lscpu"
    bad.write_text("nothing a cpudb parser knows\n")
    run = subprocess.run([*CPUDB, "ingest", "--quiet", "--db", str(tmp_path / "f.duckdb"), str(dumps)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cpudb: error: "), run.stderr
    assert "evil\\x1b[2J\\nfake: ok\\u202e.lscpu" in lines[0]
    assert all(c.isprintable() for c in lines[0])
    assert not (tmp_path / "f.duckdb").exists()

    skipped = subprocess.run([*CPUDB, "ingest", "--quiet", "--skip-bad", "--db", str(tmp_path / "f.duckdb"),
                              str(dumps), str(SAMPLE_FLEET)], capture_output=True, text=True, cwd=ROOT)
    assert skipped.returncode == 1, skipped.stderr  # the good files stored, the bad one listed
    assert [line for line in skipped.stderr.splitlines() if "evil" in line] == [
        line for line in skipped.stderr.splitlines() if line.startswith("cpudb: skipped: ")]
    assert all(c.isprintable() for c in skipped.stderr.replace("\n", ""))


def test_messages_of_every_error_class_are_printable_lines():
    for cls in [CpudbError, *_every_error_class()]:
        error = _instance(cls)
        assert all(line.isprintable() for line in error.lines()), cls
    hostile = DumpParseError("a\nb\x1b.lscpu", "no flags\u200b", 2)
    assert hostile.lines() == ["a\\nb\\x1b.lscpu:2: no flags\\u200b"]


def test_a_report_under_a_file_says_what_is_in_the_way(tmp_path):
    # "cannot write (File exists)" told the operator nothing: name the file that stands where a
    # folder must be, and the output that file and folder are in the way of.
    db = tmp_path / "fleet.duckdb"
    assert main(["ingest", "--quiet", "--db", str(db), str(SAMPLE_FLEET)]) == 0
    (tmp_path / "reports").write_text("a file where the report folder should be\n")
    out = tmp_path / "reports" / "q4" / "pool.html"
    run = subprocess.run([*CPUDB, "report", "--db", str(db), "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"cpudb: error: {out}: cannot write: {tmp_path / 'reports'} is a file, not a folder"]
    (tmp_path / "folder.html").mkdir()
    run = subprocess.run([*CPUDB, "report", "--db", str(db), "-o", str(tmp_path / "folder.html")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"cpudb: error: {tmp_path / 'folder.html'}: cannot write: a folder of that name is in the way"]
