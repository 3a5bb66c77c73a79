"""The command line, run in-process through main(argv): outputs, exit codes, error lines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from configtext import body
from conftest import DATA, ROOT, SAMPLE_FLEET, fixture
from cpudb.cli.main import build_parser, main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: cpudb " + command in capsys.readouterr().out


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "cpudb", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    assert result.stdout.startswith("cpudb ")


def test_ingest_then_common_on_the_sample_fleet(capsys, tmp_path):
    db = str(tmp_path / "c.duckdb")
    code, out, _ = run(capsys, "ingest", "--db", db, str(SAMPLE_FLEET))
    assert code == 0
    assert out.strip() == f"{db}: 10 new snapshot(s) of 10 host(s) from 10 file(s); 0 already known"
    code, out, _ = run(capsys, "common", "--db", db, "--format", "json")
    document = json.loads(out)
    assert code == 0
    assert len(document["hosts"]) == 10
    assert {"sse4_2", "avx2", "aes"} <= set(document["common_flags"])
    assert "avx512f" not in document["common_flags"]
    partial = {p["flag"]: p["hosts"] for p in document["partial_flags"]}
    assert partial["avx512f"] == 6  # Skylake, both Cascade Lakes, Ice Lake, Sapphire Rapids, Genoa
    assert partial["hle"] == 3  # Broadwell, Skylake, the Cascade Lake before the TSX microcode


def test_common_table_output(capsys, tmp_path):
    code, out, _ = run(capsys, "common", "--dumps", str(SAMPLE_FLEET), "@cascadelake")
    assert code == 0
    assert out.startswith("134 flag(s) common to all 2 selected host(s):")
    assert "hle" in out and "1/2" in out


def test_common_csv_output(capsys):
    _, out, _ = run(capsys, "common", "--dumps", str(SAMPLE_FLEET), "--format", "csv", "@cascadelake")
    lines = out.splitlines()
    assert lines[0] == "flag,hosts,total,status"
    assert "hle,1,2,partial" in lines
    assert "avx512f,2,2,common" in lines


def test_hosts_json(capsys):
    code, out, _ = run(capsys, "hosts", "--dumps", str(SAMPLE_FLEET), "--format", "json", "cmp-rome-01")
    assert code == 0
    [row] = json.loads(out)
    assert (row["host"], row["vendor"], row["flags"], row["runs_as"]) == ("cmp-rome-01", "AuthenticAMD", 132, "metal")


def test_diff(capsys):
    code, out, _ = run(capsys, "diff", "--dumps", str(SAMPLE_FLEET), "cmp-clx-01", "cmp-clx-02", "--format", "json")
    assert code == 0  # a difference is the answer, not a failure
    assert json.loads(out) == {
        "host_a": "cmp-clx-01",
        "host_b": "cmp-clx-02",
        "only_a": ["hle", "rtm"],
        "only_b": [],
        "common_count": 134,
    }


def test_bad_dump_is_one_line_on_stderr_with_exit_code_2(capsys, tmp_path):
    code, out, err = run(capsys, "ingest", "--db", str(tmp_path / "c.duckdb"), str(DATA / "bad" / "aarch64.lscpu"))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"cpudb: error: {DATA / 'bad' / 'aarch64.lscpu'}: aarch64 dump: cpudb analyses x86-64 hosts only"]
    assert not (tmp_path / "c.duckdb").exists()


def test_skip_bad_exits_1_and_lists_the_skipped_file(capsys, tmp_path):
    code, out, err = run(
        capsys, "ingest", "--db", str(tmp_path / "c.duckdb"), "--skip-bad",
        str(fixture("amd-epyc7742-1.txt")), str(DATA / "bad" / "empty.lscpu"),
    )
    assert code == 1
    assert err.strip() == f"cpudb: skipped: {DATA / 'bad' / 'empty.lscpu'}: empty file"
    assert "1 new snapshot(s) of 1 host(s) from 2 file(s); 0 already known; 1 skipped" in out


def test_unknown_host_in_a_selection(capsys):
    code, _, err = run(capsys, "common", "--dumps", str(SAMPLE_FLEET), "cmp-rome-1")
    assert code == 2
    assert err.strip() == "cpudb: error: host 'cmp-rome-1' is not known; closest: cmp-rome-01, cmp-spr-01, cmp-milan-01"


def test_missing_database(capsys, tmp_path):
    code, _, err = run(capsys, "hosts", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2
    assert "no database here (run 'cpudb ingest DUMPS...' first, or pass --db)" in err


def test_database_from_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CPUDB_DB", str(tmp_path / "env.duckdb"))
    assert run(capsys, "ingest", str(fixture("amd-epyc7742-1.txt")))[0] == 0
    assert (tmp_path / "env.duckdb").exists()


def test_flag_by_any_name(capsys):
    code, out, _ = run(capsys, "flag", "tsc-deadline", "--format", "json")
    [entry] = json.loads(out)
    assert code == 0
    assert (entry["kernel"], entry["qemu"], entry["libvirt"], entry["class"]) == (
        "tsc_deadline_timer", "tsc-deadline", "tsc-deadline", "guest",
    )
    assert "Cascadelake-Server-v1" in entry["models"]


def test_flag_table_says_why(capsys):
    code, out, _ = run(capsys, "flag", "constant_tsc")
    assert code == 0
    assert "synthetic" in out and "never" in out and "part of a guest CPU model" in out


def test_unknown_flag(capsys):
    code, _, err = run(capsys, "flag", "warp_drive")
    assert code == 2
    assert err.strip() == "cpudb: error: 'warp_drive' is not a kernel, QEMU or libvirt feature name the dictionary knows"


def test_flags_of_a_host_by_class(capsys):
    code, out, _ = run(capsys, "flags", "--dumps", str(SAMPLE_FLEET), "--host", "cmp-rome-01", "--format", "json")
    grouped = json.loads(out)
    assert code == 0
    assert "avx2" in grouped["guest"] and "svm" in grouped["nested"] and "rep_good" in grouped["synthetic"]
    assert grouped["unmigratable"] == ["nonstop_tsc"]
    assert sum(len(v) for v in grouped.values()) == 132


def test_catalog_show_and_models(capsys):
    code, out, _ = run(capsys, "catalog", "show", "Broadwell-noTSX-IBRS", "--format", "json")
    info = json.loads(out)
    assert code == 0 and info["model"] == "Broadwell-v4"
    qemu = {f["qemu"] for f in info["features"] if f["required_by"] == "qemu"}
    assert "spec-ctrl" in qemu and "hle" not in qemu
    code, out, _ = run(capsys, "catalog", "models", "--vendor", "amd", "--qemu", "7.2", "--format", "json")
    names = {row["model"] for row in json.loads(out)}
    assert "EPYC-Milan-v1" in names and "EPYC-Genoa-v1" not in names and "x86-64-v2" in names
    assert not any(name.startswith("Skylake") for name in names)


def test_catalog_unknown_model_suggests(capsys):
    code, _, err = run(capsys, "catalog", "show", "EPYC-Roma")
    assert code == 2
    assert "CPU model 'EPYC-Roma' is not in the catalog; closest: EPYC-Rome" in err


def test_catalog_import_libvirt_writes_a_file(capsys, tmp_path):
    folder = ROOT.parent / "shared" / "reference" / "libvirt-cpu_map"
    if not folder.is_dir():
        pytest.skip("../shared/reference is not present")
    out_file = tmp_path / "libvirt.json"
    code, out, err = run(capsys, "catalog", "import-libvirt", str(folder), "-o", str(out_file))
    assert code == 0
    assert out.strip() == f"{out_file}: 176 libvirt model(s) from {folder}"
    assert "DiamondRapids" in err
    assert json.loads(out_file.read_text())["generated_by"].startswith("cpudb catalog import-libvirt")


def test_baseline_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "baseline", "--dumps", str(SAMPLE_FLEET), "--format", "json", "@epyc-7002-plus")
    document = json.loads(out)
    assert code == 0
    assert {"hosts", "vendors", "common_flags", "recommended", "ranking", "not_expressible", "warnings", "config",
            "target", "guest_features"} <= set(document)
    rec = document["recommended"]
    assert {"model", "model_alias", "extra_flags", "disabled_flags", "guest_flags", "unverifiable", "edits",
            "target"} <= set(rec)
    assert rec["model"] == "EPYC-Rome-v1" and rec["target"]["name"] == "portable"
    assert rec["edits"] == len(rec["extra_flags"]) + len(rec["disabled_flags"])
    guest = document["guest_features"]
    assert {"given", "pool_common", "lost", "lost_security"} <= set(guest) and guest["given"] <= guest["pool_common"]
    assert document["hosts"] == ["cmp-genoa-01", "cmp-milan-01", "cmp-rome-01"]
    assert document["common_flags"] == sorted(document["common_flags"])
    assert set(document["config"]) == {"nova", "libvirt_xml", "qemu", "proxmox", "kubevirt"}
    entry = document["ranking"][0]
    assert {"model", "usable", "edits", "missing", "missing_counts", "extra_flags", "disabled_flags"} <= set(entry)
    assert "klass" not in out
    assert {"flag", "class", "reason"} == set(document["not_expressible"][0])
    assert "avx2" in rec["guest_flags"] and "hypervisor" not in rec["guest_flags"]


def test_baseline_with_no_usable_model_exits_1(capsys, tmp_path):
    # A guest that shows almost nothing: every 64-bit model needs features disabled, which Nova
    # Train cannot write (and it checks the bare model against each host's own CPU).
    (tmp_path / "bare.lscpu").write_text("hostname: bare\nfpu\ntsc\ncx8\nlm\n")
    code, out, _ = run(capsys, "baseline", "--dumps", str(tmp_path), "--format", "json", "--target", "openstack-train")
    document = json.loads(out)
    assert code == 1
    assert document["recommended"] is None and document["config"] is None
    assert any(w.startswith("no CPU model of openstack-train is usable on every selected host") for w in document["warnings"])


def test_baseline_emit_prints_configs_verbatim(capsys):
    code, out, _ = run(capsys, "baseline", "--dumps", str(SAMPLE_FLEET), "@cascadelake", "--emit", "nova", "--emit", "qemu")
    assert code == 0
    nova_line = next(line for line in out.splitlines() if line.startswith("cpu_model_extra_flags"))
    assert nova_line == "cpu_model_extra_flags = md-clear, mpx, ss, stibp, tsc_adjust, xsaves"
    assert "-cpu Cascadelake-Server-v3,+md-clear,+mpx,+ss,+stibp,+tsc-adjust,+xsaves,enforce" in body(out)


def test_baseline_require_failure_is_one_line(capsys):
    code, _, err = run(capsys, "baseline", "--dumps", str(SAMPLE_FLEET), "--require", "avx512f")
    assert code == 2
    assert err.startswith("cpudb: error: required flag(s) not on every selected host: avx512f is missing on 4 host(s)")


def test_a_repeated_baseline_is_remembered_and_forgotten_when_the_database_changes(tmp_path, capsys, monkeypatch):
    from cpudb.store import cache

    monkeypatch.setenv("CPUDB_CACHE", str(tmp_path / "cache"))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for name in ("amd-epyc7742-1.txt", "amd-epyc7763-1.txt"):
        shutil.copyfile(fixture(name), dumps / name)
    db_file = str(tmp_path / "c.duckdb")
    assert main(["ingest", "--quiet", "--db", db_file, str(dumps)]) == 0
    assert main(["baseline", "--db", db_file, "--format", "json"]) == 0
    first = capsys.readouterr().out
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert main(["baseline", "--db", db_file, "--format", "json"]) == 0
    assert capsys.readouterr().out == first  # the remembered answer, word for word
    # a damaged entry is recomputed, not trusted
    [entry] = (tmp_path / "cache").iterdir()
    entry.write_bytes(b"not a pickle")
    assert main(["baseline", "--db", db_file, "--format", "json"]) == 0
    assert capsys.readouterr().out == first
    # a new host changes the database file, so the answer is computed again
    shutil.copyfile(fixture("amd-epyc7451-1.txt"), dumps / "naples.txt")
    assert main(["ingest", "--quiet", "--db", db_file, str(dumps)]) == 0
    assert main(["baseline", "--db", db_file, "--format", "json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert "naples" in after["hosts"] and after["recommended"]["model"] != json.loads(first)["recommended"]["model"]
    monkeypatch.setenv("CPUDB_CACHE", "off")
    assert cache.folder() is None


def test_each_command_is_registered_by_the_module_the_command_table_names():
    # cpudb imports only the module of the command it runs; the table must say the truth.
    import importlib

    from cpudb.cli import base
    from cpudb.cli.main import COMMAND_MODULES, build_parser

    build_parser()
    where = {}
    for register in base.REGISTRY:
        where[register.__name__.removeprefix("_register_")] = register.__module__.removeprefix("cpudb.cli.")
    assert where == COMMAND_MODULES
    for command, module in COMMAND_MODULES.items():
        importlib.import_module(f"cpudb.cli.{module}")
