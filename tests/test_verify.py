"""Guest verification with the real guest of QEMU's Cascadelake-Server model."""

from __future__ import annotations

import json

from conftest import FIXTURES
from cpudb.analysis.verify import verify
from cpudb.cli.main import main
from cpudb.inputs.parse import parse_file

GUEST = FIXTURES / "intel-qemu-cascadelake-vm-1.txt"


def test_the_real_cascadelake_guest_matches_its_model(fixtures_conn):
    result = verify(fixtures_conn, parse_file(GUEST), "Cascadelake-Server")
    assert result.model == "Cascadelake-Server-v1"
    assert result.missing == () and result.unexpected == ()
    assert result.added_by_kvm == ("ht",)  # QEMU sets HTT from the guest topology
    assert {"hypervisor", "rep_good", "constant_tsc", "ospke"} <= set(result.ignored)
    assert result.verdict.startswith("OK")
    assert len(result.expected) == 75


def test_a_guest_of_another_configuration_is_reported(fixtures_conn):
    result = verify(fixtures_conn, parse_file(GUEST), "Cascadelake-Server-v5", extra_flags=("md-clear",))
    assert result.missing == ("arch_capabilities", "ibrs_enhanced", "md_clear", "xsaves")
    assert result.unexpected == ("hle", "rtm")
    assert result.verdict.startswith("MISSING")


def test_verify_cli_exit_codes(capsys):
    assert main(["verify", "--guest", str(GUEST), "--model", "Cascadelake-Server"]) == 0
    assert "OK: the guest shows exactly" in capsys.readouterr().out
    code = main(["verify", "--guest", str(GUEST), "--model", "Cascadelake-Server-v5", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert "xsaves" in document["missing"]


def test_verify_against_a_selection(capsys):
    code = main(["verify", "--guest", str(GUEST), "--dumps", str(FIXTURES), "intel-gold6230-1", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    # The closest model for one Cascade Lake is Cooperlake without avx512-bf16 (5 edits); the guest
    # of QEMU's Cascadelake-Server model lacks the extra flags it would have.
    assert document["model"] == "Cooperlake-v1" and document["disabled_flags"] == ["avx512-bf16"]
    assert code == 1 and "md_clear" in document["missing"]


def test_extra_flags_in_any_spelling(fixtures_conn, capsys):
    code = main(["verify", "--guest", str(GUEST), "--model", "Cascadelake-Server", "--extra", "md_clear,tsc_adjust"])
    out = capsys.readouterr().out
    assert code == 1
    assert "md_clear" in out and "tsc_adjust" in out
