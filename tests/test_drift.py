"""Drift between snapshots of one host, and outliers among hosts of one CPU model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import pdf
from conftest import fixture
from cpudb.analysis import drift
from cpudb.analysis.risks import outliers
from cpudb.cli.main import main
from cpudb.store import db, fleet
from cpudb.store.ingest import ingest_paths


def _snapshot(folder: Path, name: str, source: str, host: str, collected: str, kernel: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = f"hostname: {host}\ncollected: {collected}\nkernel: {kernel}\n"
    (folder / name).write_text(header + fixture(source).read_text())


@pytest.fixture
def one_host_twice(tmp_path) -> Path:
    """intel-gold6230-1 then -2 as two snapshots of one host, five months apart."""
    dumps = tmp_path / "dumps"
    _snapshot(dumps, "jan.txt", "intel-gold6230-1.txt", "cmp-7", "2026-01-10T08:00:00Z", "5.10.0-9-amd64")
    _snapshot(dumps, "jun.txt", "intel-gold6230-2.txt", "cmp-7", "2026-06-10T08:00:00Z", "6.1.0-27-amd64")
    path = tmp_path / "cpudb.duckdb"
    ingest_paths(path, [dumps])
    return path


def test_two_snapshots_of_one_host_show_tsx_removed_with_the_microcode_change(one_host_twice):
    conn = db.open_read(one_host_twice)
    fleet.select(conn, "")
    [change] = drift.changes(conn)
    assert change.host == "cmp-7"
    assert change.removed == ("hle", "rtm") and change.added == ()
    assert change.lost == ("hle", "rtm")
    assert change.microcode == ("0x5000021", "0x5002f01")
    assert change.kernel == ("5.10.0-9-amd64", "6.1.0-27-amd64")
    # the host's current flags are the newer snapshot's
    assert "hle" not in fleet.host_flags(conn, "cmp-7")


def test_drift_cli_exits_1_when_guest_flags_disappeared(one_host_twice, capsys):
    assert main(["drift", "--db", str(one_host_twice), "--format", "json"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["changes"][0]["lost"] == ["hle", "rtm"]
    assert document["hosts_with_history"] == 1
    assert "cpudb: cmp-7 lost guest flag(s) hle rtm at 2026-06-10 08:00" in captured.err
    # nothing changed since July: exit 0, cron stays quiet
    assert main(["drift", "--db", str(one_host_twice), "--since", "2026-07-01"]) == 0
    assert "no changes" in capsys.readouterr().out
    assert main(["drift", "--db", str(one_host_twice), "--since", "last tuesday"]) == 2
    assert "not an ISO 8601 date" in capsys.readouterr().err


def test_a_kernel_rename_is_not_a_loss(tmp_path):
    dumps = tmp_path / "dumps"
    old = fixture("intel-gold6230-1.txt").read_text()
    # an older kernel spelled the same bits differently (spec_ctrl is today's ibrs+ibpb+stibp bit)
    renamed = old.replace(" ibrs ", " spec_ctrl ", 1)
    assert renamed != old
    folder = dumps
    folder.mkdir()
    (folder / "a.txt").write_text("hostname: h\ncollected: 2026-01-01T00:00:00Z\n" + renamed)
    (folder / "b.txt").write_text("hostname: h\ncollected: 2026-02-01T00:00:00Z\n" + old)
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [dumps])
    conn = db.open_read(path)
    fleet.select(conn, "")
    [change] = drift.changes(conn)
    assert change.removed == ("spec_ctrl",) and change.added == ("ibrs",)
    assert change.lost == ()
    assert change.renamed == (("spec_ctrl", "ibrs"),)


def test_the_same_dumps_as_two_hosts_are_outliers(tmp_path, capsys):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for name in ("intel-gold6230-1.txt", "intel-gold6230-2.txt", "intel-gold6132-1.txt"):
        shutil.copyfile(fixture(name), dumps / name)
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [dumps])
    conn = db.open_read(path)
    fleet.select(conn, "")
    found = {h: (o.missing, o.extra, o.peers) for o in outliers(conn) for h in o.hosts}
    assert found == {
        "intel-gold6230-1": ((), ("hle", "rtm"), 2),
        "intel-gold6230-2": (("hle", "rtm"), (), 2),
    }
    conn.close()
    assert main(["outliers", "--db", str(path), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "host,cpu,peers,lacks,has too"
    assert lines[1] == "intel-gold6230-1,Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz stepping 7,2,,hle rtm"
    # and the baseline warns about them
    assert main(["baseline", "--db", str(path), "--format", "json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("hle rtm (TSX: microcode or tsx=off) on intel-gold6230-1, not on intel-gold6230-2" in w for w in warnings)


def test_the_report_has_a_drift_and_outliers_section(one_host_twice, tmp_path):
    out = tmp_path / "report.pdf"
    assert main(["report", "--db", str(one_host_twice), "-o", str(out)]) == 0
    text = pdf.text(out)
    assert "Drift" in text
    assert "1 of 1 selected host has more than one snapshot" in " ".join(text.split())
    row = next(line for line in text.splitlines() if line.strip().startswith("cmp-7") and "→" in line)
    assert "2026-01-10 → 2026-06-10" in row and "hle rtm" in row and "0x5000021 → 0x5002f01" in row
