"""Ready-to-paste configuration for the recommendation: Nova, libvirt, QEMU, Proxmox, KubeVirt.

Each emitter takes the same plain data (a Recommendation, the feature spellings, the Nova
release) and returns text. Nova and libvirt take libvirt's feature spelling, QEMU and
Proxmox QEMU's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cpudb import __version__
from cpudb.errors import CpudbError

PLATFORMS = ("nova", "libvirt", "qemu", "proxmox", "kubevirt")
# Nova release names and numbers: Rocky (18) takes any extra flag, Train (20) a list of models,
# Wallaby (23) '+flag'/'-flag', 2023.1 (27) checks with compareHypervisorCPU.
NOVA_RELEASES = {
    "queens": 17, "rocky": 18, "stein": 19, "train": 20, "ussuri": 21, "victoria": 22, "wallaby": 23,
    "xena": 24, "yoga": 25, "zed": 26, "antelope": 27, "2023.1": 27, "bobcat": 28, "2023.2": 28,
    "caracal": 29, "2024.1": 29, "dalmatian": 30, "2024.2": 30, "epoxy": 31, "2025.1": 31,
    "flamingo": 32, "2025.2": 32, "gazpacho": 33, "2026.1": 33,
}
ROCKY, TRAIN, WALLABY, ANTELOPE = 18, 20, 23, 27


@dataclass(frozen=True)
class ConfigInput:
    """What every emitter needs, in both spellings."""

    model: str  # versioned QEMU name
    model_alias: str  # the name libvirt, Nova and KubeVirt get
    qemu_model: str  # the name QEMU's -cpu gets
    proxmox_model: str  # the reported-model Proxmox gets
    add: tuple[tuple[str, str], ...]  # (QEMU name, libvirt name) to turn on
    remove: tuple[tuple[str, str], ...]  # to turn off: missing on some host, or nested not everywhere
    kvm_dropped: tuple[tuple[str, str], ...]  # in the model but KVM cannot provide them
    pool: str  # the selection, for comments
    nova_release: str | None = None


def nova_number(release: str) -> int:
    """A Nova release name (rocky, wallaby, 2024.1) or major version (23.0.0) as its major number."""
    key = release.strip().lower()
    if key in NOVA_RELEASES:
        return NOVA_RELEASES[key]
    match = re.match(r"^(\d+)(\.\d+)*$", key)
    if match and 10 <= int(match.group(1)) <= 60:
        return int(match.group(1))
    known = ", ".join(name for name in NOVA_RELEASES if not name[0].isdigit())
    raise CpudbError(f"unknown Nova release {release!r} (a name such as {known}, 2024.1, or a version such as 23.0.0)")


def nova_can_disable(release: str) -> bool:
    return nova_number(release) >= WALLABY


def nova(config: ConfigInput) -> str:
    release = nova_number(config.nova_release) if config.nova_release else None
    lines = [
        "[libvirt]",
        f"# cpudb {__version__}: pool {config.pool}",
        "cpu_mode = custom",
    ]
    if release is not None and release < TRAIN:
        lines.append(f"cpu_model = {config.model_alias}")
    else:
        lines.append(f"cpu_models = {config.model_alias}")
    flags = [libvirt.lower() for _, libvirt in config.add]
    if config.remove:
        if release is not None and release < WALLABY:
            lines.append(
                "# Nova before Wallaby cannot disable features: "
                + ", ".join(lv for _, lv in config.remove)
                + " must be turned off another way, or pick a model that needs no disabling"
            )
        else:
            flags += ["-" + libvirt.lower() for _, libvirt in config.remove]
    if flags:
        if release is not None and release < ROCKY:
            lines.append("# Nova before Rocky accepts only pcid (and a few mitigation flags) as extra flags")
        lines.append(f"cpu_model_extra_flags = {', '.join(flags)}")
    if config.kvm_dropped:
        lines.append(
            "# not listed: " + ", ".join(lv for _, lv in config.kvm_dropped)
            + " (in QEMU's model, but KVM cannot provide them; QEMU leaves them out)"
        )
    if release is None or release >= ANTELOPE:
        lines.append("# nova-compute checks this against each host with libvirt compareHypervisorCPU at start-up")
    else:
        lines.append("# nova-compute checks this against each host with libvirt compareCPU at start-up")
    return "\n".join(lines) + "\n"


def libvirt_xml(config: ConfigInput) -> str:
    lines = [
        f"<!-- cpudb {__version__}: pool {_xml_comment(config.pool)} -->",
        "<cpu mode='custom' match='exact' check='full'>",
        f"  <model fallback='forbid'>{_xml_text(config.model_alias)}</model>",
    ]
    lines += [f"  <feature policy='require' name='{libvirt}'/>" for _, libvirt in config.add]
    lines += [f"  <feature policy='disable' name='{libvirt}'/>" for _, libvirt in config.remove + config.kvm_dropped]
    lines.append("</cpu>")
    return "\n".join(lines) + "\n"


def qemu(config: ConfigInput) -> str:
    parts = [config.qemu_model]
    parts += [f"+{q}" for q, _ in config.add]
    parts += [f"-{q}" for q, _ in config.remove + config.kvm_dropped]
    parts.append("enforce")
    return "-cpu " + ",".join(parts) + "\n"


def proxmox(config: ConfigInput) -> str:
    name = "cpudb-" + (re.sub(r"[^a-z0-9-]+", "-", config.pool.lower()).strip("-")[:40] or "pool")
    flags = [f"+{q}" for q, _ in config.add] + [f"-{q}" for q, _ in config.remove + config.kvm_dropped]
    lines = [
        f"# /etc/pve/virtual-guest/cpu-models.conf (cpudb {__version__}: pool {config.pool})",
        f"# use it in a VM as: cpu: custom-{name}",
        f"cpu-model: {name}",
    ]
    if flags:
        lines.append(f"    flags {';'.join(flags)}")
    lines.append(f"    reported-model {config.proxmox_model}")
    return "\n".join(lines) + "\n"


def kubevirt(config: ConfigInput) -> str:
    lines = [
        f"# cpudb {__version__}: pool {config.pool}",
        "spec:",
        "  domain:",
        "    cpu:",
        f"      model: {config.model_alias}",
    ]
    features = [(lv, "require") for _, lv in config.add] + [(lv, "disable") for _, lv in config.remove + config.kvm_dropped]
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
