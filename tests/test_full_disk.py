"""A really full filesystem (issue 13, item 10): each scenario runs in a private mount namespace
on a small tmpfs, so ENOSPC comes from the kernel, not from a mock. Skips where the machine does
not allow an unprivileged user and mount namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, SAMPLE_FLEET

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")

# Runs inside the namespace: mounts the tmpfs, sets the scene, runs cpudb, prints what it saw.
SCENE = """
import hashlib, json, os, shutil, subprocess, sys
from pathlib import Path

full = Path(sys.argv[1])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + sys.argv[2], "tmpfs", str(full)], check=True)
CPUDB = [sys.executable, "-m", "cpudb"]

def leave_free(nbytes):
    # Fill the filesystem until only about nbytes are left.
    st = os.statvfs(full)
    fill = st.f_bavail * st.f_frsize - nbytes
    if fill > 0:
        with open(full / "filler", "wb") as handle:
            handle.write(b"x" * fill)

def state(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "filler" and not p.name.endswith(".lock")}

def run(*args):
    done = subprocess.run([*CPUDB, *args], capture_output=True, text=True, cwd=os.environ["ROOT"])
    return {"rc": done.returncode, "stderr": done.stderr}
"""


def _in_full_fs(tmp_path, size: str, body: str) -> dict:
    """Run ``body`` (after SCENE) in its own mount namespace with a tmpfs of ``size`` at
    tmp_path/full; return the JSON it prints."""
    full = tmp_path / "full"
    full.mkdir()
    script = tmp_path / "scene.py"
    script.write_text(SCENE + textwrap.dedent(body))
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user and mount namespaces are not allowed here: {probe.stderr.decode().strip()}")
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", sys.executable, str(script), str(full), size],
        capture_output=True, text=True, cwd=ROOT, env={"ROOT": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300,
    )
    if "mount:" in done.stderr and done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _one_line_exit_2(result: dict) -> str:
    assert result["rc"] == 2, result
    assert "Traceback" not in result["stderr"], result["stderr"]
    lines = result["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("cpudb: error: "), result["stderr"]
    assert "No space left on device" in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "fleet.duckdb"
    subprocess.run([sys.executable, "-m", "cpudb", "ingest", "--quiet", "--db", str(db), str(SAMPLE_FLEET)],
                   cwd=ROOT, check=True)
    return db


def test_a_report_to_a_full_filesystem_is_one_line_and_exit_2(tmp_path, fleet_db):
    result = _in_full_fs(tmp_path, "256k", f"""
        leave_free(0)
        out = run("report", "--db", {str(fleet_db)!r}, "-o", str(full / "report"), "--name", "r")
        out["left"] = state(full)
        print(json.dumps(out))
    """)
    line = _one_line_exit_2(result)
    assert "report" in line
    assert result["left"] == {}  # no half-written file, no staging folder left behind


def test_a_report_whose_pdf_does_not_fit_replaces_nothing(tmp_path, fleet_db):
    # The old report is there; the new HTML and configs fit, the PDF does not.
    result = _in_full_fs(tmp_path, "4m", f"""
        db = {str(fleet_db)!r}
        first = run("report", "--db", db, "-o", str(full / "report"), "--name", "r")
        assert first["rc"] == 0, first
        before = state(full)
        html = (full / "report" / "r.html").stat().st_size
        pdf = (full / "report" / "r.pdf").stat().st_size
        leave_free(html + 8 * 1024 + pdf // 3)
        out = run("report", "--db", db, "-o", str(full / "report"), "--name", "r")
        out["same"] = state(full) == before
        out["leftovers"] = [p.name for p in (full / "report").iterdir() if p.name.startswith(".")]
        print(json.dumps(out))
    """)
    assert _one_line_exit_2(result).startswith(f"cpudb: error: {tmp_path}/full/report/r.pdf: ")
    assert result["same"], "an output of the failed run replaced an old one"
    assert result["leftovers"] == []


def test_an_ingest_that_cannot_copy_the_database_leaves_it_as_it_was(tmp_path, fleet_db):
    # The private copy a writer works on does not fit beside the database.
    result = _in_full_fs(tmp_path, "8m", f"""
        db = full / "fleet.duckdb"
        shutil.copyfile({str(fleet_db)!r}, db)
        before = state(full)
        leave_free(db.stat().st_size // 2)
        out = run("ingest", "--quiet", "--db", str(db), {str(SAMPLE_FLEET)!r})
        out["same"] = state(full) == before
        out["leftovers"] = [p.name for p in full.iterdir() if ".tmp-" in p.name or p.name.endswith(".wal")]
        print(json.dumps(out))
    """)
    line = _one_line_exit_2(result)
    assert "fleet.duckdb: no room for the private copy" in line
    assert result["same"] and result["leftovers"] == [], result


def test_duckdb_running_out_of_space_is_one_line_and_leaves_the_database(tmp_path, fleet_db):
    # The copy fits; DuckDB's own writes of 300 new hosts do not.
    result = _in_full_fs(tmp_path, "16m", f"""
        sys.path.insert(0, os.environ["ROOT"])
        from cpudb.build.synthetic import generate
        dumps = Path({str(tmp_path)!r}) / "dumps"
        generate(300, dumps, seed=3)
        db = full / "fleet.duckdb"
        shutil.copyfile({str(fleet_db)!r}, db)
        before = state(full)
        leave_free(db.stat().st_size + 16 * 1024)
        out = run("ingest", "--quiet", "--db", str(db), str(dumps))
        out["same"] = state(full) == before
        out["leftovers"] = [p.name for p in full.iterdir() if ".tmp-" in p.name or p.name.endswith(".wal")]
        print(json.dumps(out))
    """)
    assert "fleet.duckdb: no room to write the database" in _one_line_exit_2(result)
    assert result["same"] and result["leftovers"] == [], result
