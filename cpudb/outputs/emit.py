"""Ready-to-paste configuration for the recommendation: Nova, libvirt, QEMU, Proxmox, KubeVirt.

Each emitter takes the same plain data (ConfigInput) and returns text whose first comment names
the pool and the target it was made for. Nova, libvirt and KubeVirt take libvirt's feature
spelling, QEMU and Proxmox QEMU's. What each platform accepts is asked of the target
(cpudb.catalog.targets), never decided here.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cpudb import __version__
from cpudb.analysis.configs import ConfigInput, config_input
from cpudb.catalog import targets

if TYPE_CHECKING:
    import duckdb

    from cpudb.analysis.baseline import Baseline

PLATFORMS = ("nova", "libvirt", "qemu", "proxmox", "kubevirt")
# Configs are pasted from PDFs and terminals: lines are broken only where the format continues
# them (an indented oslo.config continuation, a shell backslash-newline, another comment line).
WIDTH = 76


def _comment(text: str, mark: str = "#") -> list[str]:
    """A comment as lines of at most WIDTH characters, each starting with ``mark``."""
    return textwrap.wrap(text, WIDTH - len(mark) - 1, initial_indent=f"{mark} ", subsequent_indent=f"{mark} ",
                         break_long_words=False, break_on_hyphens=False)


def _header(config: ConfigInput, mark: str = "#") -> list[str]:
    return _comment(f"cpudb {__version__}: pool {config.pool}; target {config.target.label}", mark)


def _continued(key: str, items: list[str]) -> list[str]:
    """``key = a, b, c`` with indented continuation lines (oslo.config joins them, and Nova's
    ListOpt strips each item)."""
    lines, line = [], f"{key} ="
    for index, item in enumerate(items):
        piece = f" {item}" + ("," if index < len(items) - 1 else "")
        if len(line) + len(piece) > WIDTH and line.strip() != f"{key} =":
            lines.append(line)
            line = "   "
        line += piece
    return lines + [line]


def nova(config: ConfigInput) -> str:
    rules = targets.rules()
    target = config.target
    release = target.nova_version
    lines = ["[libvirt]", *_header(config)]
    if release is None:
        _, why = targets.nova_needs(tuple(lv for _, lv in config.remove), config.uses_kvm_features,
                                    bool(config.kvm_dropped))
        lines += _comment(f"Nova is not part of this target: this needs Nova {why}")
    lines.append("cpu_mode = custom")
    key = "cpu_models" if release is None or release >= rules.nova_models_list_since else "cpu_model"
    lines.append(f"{key} = {config.model_alias}")
    flags = [libvirt.lower() for _, libvirt in config.add]
    if target.nova_can_disable:
        flags += ["-" + libvirt.lower() for _, libvirt in config.disabled]
    elif config.kvm_dropped:
        lines += _comment(
            "not listed: " + ", ".join(lv for _, lv in config.kvm_dropped)
            + f" (in the model, but KVM cannot provide them and drops them; Nova before "
            f"{targets.shown(rules.nova_disable_since)} cannot write '-flag')"
        )
    if flags:
        lines += _continued("cpu_model_extra_flags", flags)
    if release is not None:
        how = ("compareCPU: the model, then each flag, against the host's own CPU" if target.nova_compares_host_cpu
               else "compareHypervisorCPU: the model with every flag, against what KVM can give")
        lines += _comment(f"nova-compute {targets.shown(release)} checks this on each host at start-up with {how}")
    return "\n".join(lines) + "\n"


def libvirt_xml(config: ConfigInput) -> str:
    check = targets.rules().libvirt_check
    text = f"cpudb {__version__}: pool {config.pool}; target {config.target.label}"
    if config.target.libvirt is None:
        text += (f". libvirt is not part of this target: the name {config.model_alias} needs libvirt "
                 f"{config.libvirt_first or 'with -vN names'} or newer")
    # No line ends in '-': a PDF reader would take it for a hyphen and join the lines.
    body = textwrap.wrap(_xml_comment(text), WIDTH - 5, break_long_words=False, break_on_hyphens=False)
    lines = [f"<!-- {body[0]}", *(f"     {line}" for line in body[1:])]
    lines[-1] += " -->"
    lines.append(f"<cpu mode='custom' match='exact' check='{check}'>")
    lines.append(f"  <model fallback='forbid'>{_xml_text(config.model_alias)}</model>")
    lines += [f"  <feature policy='require' name='{libvirt}'/>" for _, libvirt in config.add]
    lines += [f"  <feature policy='disable' name='{libvirt}'/>" for _, libvirt in config.disabled]
    lines.append("</cpu>")
    return "\n".join(lines) + "\n"


def shell_word(start: str, items: Sequence[str], width: int = WIDTH) -> list[str]:
    """``start`` and the comma-joined ``items`` as one shell word over lines of at most ``width``:
    the shell removes a backslash-newline, so the continuation lines start unindented."""
    lines, line = [], start
    for index, item in enumerate(items):
        piece = item + ("," if index < len(items) - 1 else "")
        if line and len(line) + len(piece) > width - 1:
            lines.append(line + "\\")
            line = ""
        line += piece
    return [*lines, line]


def qemu(config: ConfigInput) -> str:
    parts = [f"+{q}" for q, _ in config.add] + [f"-{q}" for q, _ in config.disabled] + ["enforce"]
    return "\n".join([*_header(config), *shell_word(f"-cpu {config.qemu_model},", parts)]) + "\n"


def proxmox(config: ConfigInput) -> str:
    header = _header(config)
    if config.proxmox_model is None:
        return "\n".join(header + _comment(
            f"no Proxmox VE configuration: qemu-server has no reported-model for {config.model} "
            "(run with --target proxmox-8 for a model Proxmox VE names)")) + "\n"
    name = "cpudb-" + (re.sub(r"[^a-z0-9-]+", "-", config.pool.lower()).strip("-")[:40] or "pool")
    flags = [f"+{q}" for q, _ in config.add] + [f"-{q}" for q, _ in config.disabled]
    # The flags value cannot be continued: it stays one line (the report prints it unbroken).
    lines = [*header, "# /etc/pve/virtual-guest/cpu-models.conf", f"# use it in a VM as: cpu: custom-{name}"]
    if config.proxmox_builtin:
        lines.append(f"# the same CPU as Proxmox VE's built-in type: cpu: {config.proxmox_builtin}")
    lines.append(f"cpu-model: {name}")
    if flags:
        lines.append(f"    flags {';'.join(flags)}")
    lines.append(f"    reported-model {config.proxmox_model}")
    return "\n".join(lines) + "\n"


def kubevirt(config: ConfigInput) -> str:
    rules = targets.rules()
    family = re.sub(r"-v\d+$", "", config.model_alias)
    if rules.kubevirt_obsolete_model(family):
        return "\n".join(_header(config) + _comment(
            f"no KubeVirt configuration: {config.model_alias} is one of KubeVirt's obsolete CPU models, so no node "
            "is labelled for it and the VMI is never scheduled (use --target kubevirt-1.5)")) + "\n"
    lines = [*_header(config), "spec:", "  domain:", "    cpu:", f"      model: {config.model_alias}"]
    features = [(lv, "require") for _, lv in config.add] + [(lv, "disable") for _, lv in config.disabled]
    if features:
        lines.append("      features:")
        for name, policy in features:
            lines += [f"        - name: {name}", f"          policy: {policy}"]
    return "\n".join(lines) + "\n"


EMITTERS = {"nova": nova, "libvirt": libvirt_xml, "qemu": qemu, "proxmox": proxmox, "kubevirt": kubevirt}
# JSON keys of the configuration, per platform.
CONFIG_KEYS = {"nova": "nova", "libvirt": "libvirt_xml", "qemu": "qemu", "proxmox": "proxmox", "kubevirt": "kubevirt"}


def all_configs(config: ConfigInput) -> dict[str, str]:
    return {CONFIG_KEYS[name]: emit(config) for name, emit in EMITTERS.items()}


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_comment(text: str) -> str:
    return _xml_text(text).replace("--", "- -")


def configs(conn: duckdb.DuckDBPyConnection, result: Baseline) -> dict[str, str] | None:
    """All five configurations as text, keyed as in the JSON output."""
    config = config_input(conn, result)
    return all_configs(config) if config else None
