"""cpudb collect against fake hosts: a fake `ssh` on PATH runs the collection script locally with
per-host fake commands. No network address is ever contacted."""

from __future__ import annotations

import os
import platform
import shutil
import stat
from pathlib import Path

import pytest

from configtext import prose
from conftest import fixture
from cpudb.cli.main import main
from cpudb.inputs.parse import parse_file
from test_inputs import domcaps

FAKE_SSH = r"""#!/bin/sh
# Fake ssh: log the arguments, then act as the host named by the target.
echo "$*" >> "$FAKE_ROOT/ssh.log"
while [ $# -gt 0 ]; do
    case "$1" in
        -o) shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
target=$1; shift
host=${target#*@}
case "$host" in
    slow) sleep 30; exit 0 ;;
    down) echo "ssh: connect to host down port 22: No route to host" >&2; exit 255 ;;
    denied) echo "$target: Permission denied (publickey)." >&2; exit 255 ;;
esac
[ "$*" = "sh -s" ] || { echo "fake ssh: unexpected remote command: $*" >&2; exit 1; }
# The host's own commands only, and its /proc/cpuinfo.
sed -e "s|cat /proc/cpuinfo|cat $FAKE_ROOT/$host/cpuinfo|" -e "s|-r /proc/cpuinfo|-r $FAKE_ROOT/$host/cpuinfo|" \
    | PATH="$FAKE_ROOT/$host/bin" /bin/sh -s
"""


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _fake_host(root: Path, name: str, virsh: bool) -> None:
    bin_dir = root / name / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("uname", "cat", "head"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    shutil.copyfile(fixture("amd-epyc7763-1.txt"), root / name / "cpuinfo")
    shutil.copyfile(fixture("amd-epyc7742-1.txt"), root / name / "lscpu.out")
    _script(bin_dir / "lscpu", f"#!/bin/sh\n[ \"$LC_ALL\" = C ] || exit 3\nexec cat {root / name / 'lscpu.out'}\n")
    if virsh:
        (root / name / "domcaps.xml").write_text(domcaps("EPYC-Rome", "AMD", require=["amd-ssbd", "x2apic"]))
        version = (
            "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\n"
            "Running hypervisor: QEMU 7.2.22\n"
        )
        _script(bin_dir / "virsh", f"#!/bin/sh\n[ \"$*\" = '-r version' ] && {{ printf '{version}'; exit 0; }}\n"
                f"[ \"$*\" = '-r domcapabilities' ] || exit 1\nexec cat {root / name / 'domcaps.xml'}\n")
        _script(bin_dir / "nova-compute", "#!/bin/sh\n[ \"$*\" = --version ] && echo 26.2.1\n")
    else:
        _script(bin_dir / "qemu-system-x86_64",
                "#!/bin/sh\necho 'QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)'\necho 'Copyright (c) 2003-2023'\n")


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    root = tmp_path / "fake"
    (root / "bin").mkdir(parents=True)
    _script(root / "bin" / "ssh", FAKE_SSH)
    _fake_host(root, "good", virsh=True)
    _fake_host(root, "novirsh", virsh=False)
    monkeypatch.setenv("PATH", f"{root / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ROOT", str(root))
    return root


def test_collect_writes_the_good_hosts_and_names_each_failure(fake_ssh, tmp_path, capsys):
    out = tmp_path / "dumps"
    code = main(["collect", "--ssh", "admin@good", "slow", "novirsh", "down", "--timeout", "2", "-o", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.txt", "novirsh.txt"]  # nothing partial left
    assert f"{out}: 2 of 4 host(s) collected; 2 failed" in captured.out
    errors = captured.err.splitlines()
    assert "cpudb: slow: failed: timed out after 2 s" in errors
    assert "cpudb: down: failed: ssh: connect to host down port 22: No route to host" in errors
    assert "cpudb: novirsh: not collected: virsh domcapabilities: virsh: command not found" in errors
    assert "cpudb: admin@good: not collected: cpuid -r: cpuid: command not found" in errors
    assert not any(line.startswith("cpudb: admin@good: failed") for line in errors)
    # ssh ran non-interactively with a connect timeout
    log = (fake_ssh / "ssh.log").read_text().splitlines()
    assert all("-o BatchMode=yes -o ConnectTimeout=2" in line for line in log)


def test_collected_files_parse_with_header_sections_and_guest_view(fake_ssh, tmp_path):
    out = tmp_path / "dumps"
    main(["collect", "--ssh", "admin@good", "novirsh", "-o", str(out), "--quiet"])
    good = parse_file(out / "good.txt")
    assert good.host == "good" and good.source_format == "collect"
    assert good.kernel == platform.release()
    assert good.flags == parse_file(fixture("amd-epyc7742-1.txt")).flags  # lscpu's flags
    assert good.microcode == "0xa0011d3"  # lscpu has none; /proc/cpuinfo's
    assert good.guest_source == "virsh domcapabilities" and "amd-ssbd" in good.guest_features
    assert good.collected_at is not None
    plain = parse_file(out / "novirsh.txt")
    assert plain.guest_features is None and plain.guest_source is None
    text = (out / "novirsh.txt").read_text()
    assert "# not collected: virsh domcapabilities: virsh: command not found" in text
    assert main(["ingest", "--db", str(tmp_path / "c.duckdb"), str(out), "--quiet"]) == 0


def test_collected_versions_make_the_oldest_stack_the_default_target(fake_ssh, tmp_path, capsys):
    out = tmp_path / "dumps"
    main(["collect", "--ssh", "admin@good", "novirsh", "-o", str(out), "--quiet"])
    good, plain = parse_file(out / "good.txt"), parse_file(out / "novirsh.txt")
    # libvirt's answer names the QEMU it runs; without virsh, the QEMU binary's own version.
    assert (good.qemu_version, good.libvirt_version, good.nova_version) == ("7.2.22", "9.0.0", "26.2.1")
    assert (plain.qemu_version, plain.libvirt_version, plain.nova_version) == ("8.2.2", None, None)
    db = str(tmp_path / "c.duckdb")
    main(["ingest", "--db", db, str(out), "--quiet"])
    capsys.readouterr()
    assert main(["baseline", "--db", db, "--format", "json"]) == 0
    target = __import__("json").loads(capsys.readouterr().out)["target"]
    assert (target["name"], target["qemu"], target["libvirt"], target["nova"]) == ("selection", "7.2.22", "9.0.0", "26.2.1")
    assert "QEMU 7.2.22: the oldest collected, on good" in target["notes"]
    # Nova 26.2.1 has the compareHypervisorCPU backport; the config's header names this target.
    main(["baseline", "--db", db, "--emit", "nova"])
    text = capsys.readouterr().out
    assert "target selection (QEMU 7.2.22, libvirt 9.0.0, Nova 26.2.1" in prose(text) and "compareHypervisorCPU" in text


def test_permission_denied_and_a_host_file(fake_ssh, tmp_path, capsys):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# pool A\nroot@denied\n\ngood   # the good one\n")
    out = tmp_path / "dumps"
    assert main(["collect", "--ssh-file", str(hosts), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cpudb: root@denied: failed: root@denied: Permission denied (publickey)." in err
    assert [p.name for p in out.iterdir()] == ["good.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ssh", "bad host"], "'bad host': not an ssh target"),
        (["--ssh", "a@x", "b@x"], "host(s) listed twice: x"),
        (["--ssh", "x", "--parallel", "0"], "--parallel must be at least 1"),
        (["--ssh", "."], "'.': not an ssh target"),  # "..txt" would be a hidden file ingest skips
        (["--ssh", "root@.."], "'root@..': not an ssh target"),
    ],
)
def test_bad_collect_arguments_exit_2(tmp_path, capsys, args, message):
    assert main(["collect", *args, "-o", str(tmp_path / "d")]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_host_file_names_the_line(tmp_path, capsys):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("good\nno/slashes\n")
    assert main(["collect", "--ssh-file", str(hosts), "-o", str(tmp_path / "d")]) == 2
    assert f"{hosts}:2: 'no/slashes' is not an ssh target" in capsys.readouterr().err


@pytest.mark.skipif(platform.machine() != "x86_64" or not Path("/proc/cpuinfo").exists(), reason="needs an x86-64 Linux")
def test_collect_on_this_machine(tmp_path):
    out = tmp_path / "dumps"
    assert main(["collect", "-o", str(out), "--quiet"]) == 0
    [written] = list(out.iterdir())
    dump = parse_file(written)
    assert dump.source_format == "collect" and "fpu" in dump.flags


def test_the_remote_side_cannot_choose_its_host_name(fake_ssh, tmp_path):
    _fake_host(fake_ssh, "liar", virsh=False)
    lscpu = fake_ssh / "liar" / "lscpu.out"
    lscpu.write_text("hostname: ../../x\nhostname: good\n" + lscpu.read_text())
    out = tmp_path / "dumps"
    assert main(["collect", "--ssh", "root@liar", "-o", str(out), "--quiet"]) == 0
    assert [p.name for p in out.iterdir()] == ["liar.txt"]
    dump = parse_file(out / "liar.txt")
    assert dump.host == "liar"
    assert "# the remote side printed: hostname: ../../x" in (out / "liar.txt").read_text()


def test_a_remote_child_that_holds_the_output_open_ends_at_the_timeout(fake_ssh, tmp_path):
    import subprocess
    import sys

    _fake_host(fake_ssh, "holder", virsh=False)
    for tool in ("setsid", "sleep"):
        os.symlink(shutil.which(tool), fake_ssh / "holder" / "bin" / tool)
    # A child in its own session keeps stdout open for 120 s after the script ends.
    _script(fake_ssh / "holder" / "bin" / "lscpu", f"#!/bin/sh\nsetsid sleep 120 &\nexec cat {fake_ssh / 'holder' / 'lscpu.out'}\n")
    run = subprocess.run([sys.executable, "-m", "cpudb", "collect", "--ssh", "holder", "--timeout", "3",
                          "-o", str(tmp_path / "dumps"), "--quiet"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "holder: failed: timed out after 3 s" in run.stderr
