"""Collect dumps from hypervisors, locally or over the system ``ssh``.

One ssh connection per host runs a small POSIX shell script that prints every command's output
under a ``--- name`` marker, or why it could not run. The output is checked with the parsers
before it is written, atomically, as ``DIR/<host>.txt``: a file cpudb can ingest (see
parse_bundle). A host that fails is reported with the reason and nothing is written for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cpudb import __version__
from cpudb.errors import CpudbError, DumpParseError

DEFAULT_TIMEOUT = 30.0  # seconds for one host, connection included (the CLI's default too)
DEFAULT_PARALLEL = 16
CONNECT_TIMEOUT = 10  # seconds, ssh -o ConnectTimeout

# The remote side: POSIX sh only. Missing commands are reported, not fatal, except that a host
# must give lscpu or /proc/cpuinfo. "!" lines carry facts and problems back to the collector.
REMOTE_SCRIPT = r"""
LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/sbin:/sbin:/usr/local/bin"; export PATH
echo "!kernel $(uname -r 2>/dev/null)"
run() {
    name=$1; shift
    if ! command -v "$1" >/dev/null 2>&1; then echo "!missing $name: $1: command not found"; return; fi
    out=$("$@" 2>&1); status=$?
    if [ $status -ne 0 ]; then
        echo "!missing $name: $(printf '%s\n' "$out" | head -n 1) (exit $status)"; return
    fi
    echo "--- $name"; printf '%s\n' "$out"
}
run lscpu lscpu
if [ -r /proc/cpuinfo ]; then echo "--- /proc/cpuinfo"; cat /proc/cpuinfo; else echo "!missing /proc/cpuinfo: not readable"; fi
run "virsh domcapabilities" virsh -r domcapabilities
run "cpuid -r" cpuid -r -1
fact() {
    name=$1; shift
    command -v "$1" >/dev/null 2>&1 || return 0
    "$@" 2>&1 | head -n 4 | while IFS= read -r line; do echo "!$name $line"; done
}
fact virsh-version virsh -r version
fact qemu-version qemu-system-x86_64 --version
fact nova-version nova-compute --version
"""
# What the stack's version commands print, read back into header lines (the default target of
# a baseline over collected hosts is the oldest stack among them).
_STACK_FACTS = (
    ("libvirt", "virsh-version", re.compile(r"^Using library: libvirt (\d+(?:\.\d+)*)")),
    ("qemu", "virsh-version", re.compile(r"^Running hypervisor: QEMU (\d+(?:\.\d+)*)")),
    ("qemu", "qemu-version", re.compile(r"version (\d+(?:\.\d+)*)")),
    ("nova", "nova-version", re.compile(r"^(\d+(?:\.\d+)*)\s*$")),
)

_TARGET = re.compile(r"^(?:[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class Outcome:
    """What happened for one host: the file written, or why not, and what was not collected."""

    target: str
    host: str
    path: Path | None
    error: str | None
    missing: tuple[str, ...] = ()


def host_of(target: str) -> str:
    """The host name a file is written under: the ssh target without ``user@``."""
    match = _TARGET.match(target)
    if not match or match.group("host").startswith("."):  # ".", "..": a hidden file ingest would skip
        raise CpudbError(f"{target!r}: not an ssh target (expected [user@]host)")
    return match.group("host").strip("[]").replace(":", "-")


def read_targets(path: Path) -> list[str]:
    """One ``[user@]host`` per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CpudbError(f"{path}: cannot read the host list ({getattr(exc, 'strerror', None) or exc})") from None
    targets = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not _TARGET.match(text):
            raise CpudbError(f"{path}:{number}: {text!r} is not an ssh target (expected [user@]host)")
        targets.append(text)
    if not targets:
        raise CpudbError(f"{path}: no hosts listed")
    return targets


def collect(
    targets: Iterable[str] | None,
    out_dir: Path,
    parallel: int = DEFAULT_PARALLEL,
    timeout: float = DEFAULT_TIMEOUT,
    ssh_options: tuple[str, ...] = (),
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Collect every target (None: this machine) into ``out_dir``; one Outcome per target, in order."""
    targets = list(targets) if targets is not None else None
    hosts = [host_of(t) for t in targets] if targets else []
    duplicates = sorted({h for h in hosts if hosts.count(h) > 1})
    if duplicates:
        raise CpudbError(f"host(s) listed twice: {', '.join(duplicates)}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(target: str | None) -> Outcome:
        outcome = _collect_one(target, out_dir, timeout, ssh_options)
        if on_done:
            on_done(outcome)
        return outcome

    if targets is None:
        return [one(None)]
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets)))) as pool:
        return list(pool.map(one, targets))


def _collect_one(target: str | None, out_dir: Path, timeout: float, ssh_options: tuple[str, ...]) -> Outcome:
    host = host_of(target) if target else socket.gethostname().split(".")[0]
    label = target or host
    if target:
        command = [
            "ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={min(CONNECT_TIMEOUT, max(1, int(timeout)))}",
            *ssh_options, "--", target, "sh", "-s",
        ]
    else:
        command = ["sh", "-s"]
    started = datetime.now(timezone.utc)
    try:
        # Its own process group, so a timeout kills ssh and anything it started.
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        return Outcome(label, host, None, f"cannot run {command[0]}: {exc.strerror or exc}")
    try:
        stdout, stderr_bytes = process.communicate(REMOTE_SCRIPT.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        # Not communicate(): a child that left the group (setsid) may hold the pipes open for ever.
        for pipe in (process.stdin, process.stdout, process.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
        process.wait()
        return Outcome(label, host, None, f"timed out after {timeout:g} s")
    stderr = stderr_bytes.decode("utf-8", "replace").strip().splitlines()
    if process.returncode == 255 and target:  # ssh's own failure: unreachable, refused, auth
        return Outcome(label, host, None, stderr[-1] if stderr else "ssh failed (exit 255)")
    if process.returncode != 0:
        reason = stderr[-1] if stderr else f"exit {process.returncode}"
        return Outcome(label, host, None, f"collection script failed: {reason}")
    text, missing = _assemble(host, started, stdout.decode("utf-8", "replace"))
    path = out_dir / f"{host}.txt"
    try:
        from cpudb.inputs.parse import parse_dump

        parse_dump(text.encode(), str(path))
    except DumpParseError as exc:
        return Outcome(label, host, None, f"collected output is not usable: {exc.problem}", missing)
    from cpudb.files import write_atomically

    write_atomically(path, text.encode())
    return Outcome(label, host, path, None, missing)


def _assemble(host: str, started: datetime, output: str) -> tuple[str, tuple[str, ...]]:
    """The file to write: header lines, notes of what was not collected, then the sections."""
    from cpudb.inputs.parse import HEADER_LINE

    kernel = ""
    missing: list[str] = []
    body: list[str] = []
    stack: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith("!kernel "):
            kernel = line.removeprefix("!kernel ").strip()
        elif line.startswith(("!virsh-version ", "!qemu-version ", "!nova-version ")):
            source, _, text = line[1:].partition(" ")
            for component, wanted, pattern in _STACK_FACTS:
                match = pattern.search(text.strip()) if source == wanted else None
                if match and component not in stack:
                    stack[component] = match.group(1)
        elif line.startswith("!missing "):
            missing.append(line.removeprefix("!missing ").strip())
        elif HEADER_LINE.match(line):
            # The collector says who the host is (the ssh target), not the remote side: a remote
            # "hostname: ../../x" or another host's name is kept only as a comment.
            body.append(f"# the remote side printed: {line.strip()[:120]}")
        else:
            body.append(line)
    header = [
        f"hostname: {host}",
        f"collected: {started.isoformat(timespec='seconds')}",
        f"kernel: {kernel}",
        f"collector: cpudb {__version__}",
        *(f"{component}: {stack[component]}" for component in ("qemu", "libvirt", "nova") if component in stack),
        *(f"# not collected: {reason}" for reason in missing),
    ]
    return "\n".join(header + body) + "\n", tuple(missing)
