"""Configuration emitters: exact text for each platform, and the rules of each target."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from configtext import body, prose
from cpudb.analysis.configs import ConfigInput
from cpudb.catalog import targets
from cpudb.errors import CpudbError
from cpudb.outputs.emit import kubevirt, libvirt_xml, nova, proxmox, qemu

CONFIG = ConfigInput(
    model="Cascadelake-Server-v5",
    model_alias="Cascadelake-Server-v5",
    qemu_model="Cascadelake-Server-v5",
    proxmox_model="Cascadelake-Server-v5",
    add=(("pcid", "pcid"), ("tsc-adjust", "tsc_adjust")),
    remove=(("pku", "pku"),),
    kvm_dropped=(("monitor", "monitor"),),
    pool="@clx",
    target=targets.named("rhel-9"),
)


def test_every_config_names_its_target_in_the_first_line():
    for emit in (nova, libvirt_xml, qemu, proxmox, kubevirt):
        first = emit(CONFIG).splitlines()[0 if emit is not nova else 1]
        assert "target rhel-9 (QEMU 9.1, libvirt 10.10)" in first, (emit.__name__, first)


def test_nova_without_a_release_in_the_target_says_which_nova_it_needs():
    text = nova(CONFIG)
    assert body(text) == [
        "[libvirt]",
        "cpu_mode = custom",
        "cpu_models = Cascadelake-Server-v5",
        "cpu_model_extra_flags = pcid, tsc_adjust, -pku, -monitor",
    ]
    assert "Nova is not part of this target: this needs Nova 27.0.0 or 26.2.1: it disables pku" in prose(text)


def test_nova_before_wallaby_writes_no_minus_and_names_what_it_leaves_out():
    train = replace(CONFIG, remove=(), target=targets.named("openstack-train"))
    text = nova(train)
    assert "cpu_model_extra_flags = pcid, tsc_adjust\n" in text
    assert "# not listed: monitor" in text
    assert "compareCPU: the model, then each flag, against the host's own CPU" in text
    wallaby = nova(replace(CONFIG, remove=(), target=targets.named("openstack-wallaby")))
    assert "-monitor" in wallaby and "compareCPU" in wallaby
    caracal = nova(replace(CONFIG, target=targets.named("openstack-2024.1")))
    assert "-pku" in caracal and "compareHypervisorCPU" in caracal


@pytest.mark.parametrize(
    ("release", "host_cpu"),
    [("train", True), ("zed", True), ("26.2.0", True), ("26.2.1", False), ("2023.1", False), ("29.0.0", False)],
)
def test_which_nova_compares_against_the_host_cpu(release, host_cpu):
    # nova commit 9caaaf1f22, first in 27.0.0, backported to Zed as 26.2.1.
    assert targets.resolve(nova=release).nova_compares_host_cpu is host_cpu


@pytest.mark.parametrize(("name", "version"), [("rocky", (18, 0, 0)), ("Wallaby", (23, 0, 0)),
                                                ("2024.1", (29, 0, 0)), ("27.1.0", (27, 1, 0))])
def test_nova_release_names(name, version):
    assert targets.nova_version(name) == version


def test_unknown_nova_release_and_target():
    with pytest.raises(CpudbError, match="unknown Nova release 'grizzly'"):
        targets.nova_version("grizzly")
    with pytest.raises(CpudbError, match=r"unknown target 'debian-11'; did you mean debian-1[23]"):
        targets.named("debian-11")


def test_libvirt_xml_uses_check_partial():
    assert body(libvirt_xml(CONFIG)) == [
        "<cpu mode='custom' match='exact' check='partial'>",
        "  <model fallback='forbid'>Cascadelake-Server-v5</model>",
        "  <feature policy='require' name='pcid'/>",
        "  <feature policy='require' name='tsc_adjust'/>",
        "  <feature policy='disable' name='pku'/>",
        "  <feature policy='disable' name='monitor'/>",
        "</cpu>",
    ]


def test_libvirt_xml_comment_cannot_be_broken_by_the_pool_name():
    text = libvirt_xml(replace(CONFIG, pool="x --> <script>"))
    assert "-->" not in text.splitlines()[0][4:-3] and "<script>" not in text


def test_qemu_argument():
    assert body(qemu(CONFIG)) == ["-cpu Cascadelake-Server-v5,+pcid,+tsc-adjust,-pku,-monitor,enforce"]


def test_proxmox_section_and_a_model_proxmox_cannot_name():
    assert body(proxmox(CONFIG)) == [
        "cpu-model: cpudb-clx",
        "    flags +pcid;+tsc-adjust;-pku;-monitor",
        "    reported-model Cascadelake-Server-v5",
    ]
    refused = proxmox(replace(CONFIG, proxmox_model=None))
    assert body(refused) == [] and "qemu-server has no reported-model for Cascadelake-Server-v5" in prose(refused)


def test_kubevirt_yaml():
    document = yaml.safe_load(kubevirt(CONFIG))
    assert document == {
        "spec": {
            "domain": {
                "cpu": {
                    "model": "Cascadelake-Server-v5",
                    "features": [
                        {"name": "pcid", "policy": "require"},
                        {"name": "tsc_adjust", "policy": "require"},
                        {"name": "pku", "policy": "disable"},
                        {"name": "monitor", "policy": "disable"},
                    ],
                }
            }
        }
    }


@pytest.mark.parametrize("model", ["qemu64", "qemu64-v1", "kvm64", "Conroe", "Opteron_G2-v1"])
def test_kubevirt_never_gets_an_obsolete_model(model):
    text = kubevirt(replace(CONFIG, model_alias=model))
    assert yaml.safe_load(text) is None
    assert "obsolete CPU models" in prose(text)


def test_every_target_row_names_its_evidence_and_loads():
    rows = targets.listed()
    names = {t.name for t in rows}
    wanted = {"debian-12", "debian-13", "ubuntu-22.04", "ubuntu-24.04", "rhel-9", "rhel-10", "proxmox-8"}
    wanted |= {f"openstack-{r}" for r in ("train", "ussuri", "victoria", "wallaby", "xena", "yoga", "zed",
                                         "2023.1", "2023.2", "2024.1", "2024.2", "2025.1", "2025.2")}
    assert wanted <= names
    for target in rows:
        # The loader refuses a row whose bound components lack a source; every source says something.
        evidence = targets.evidence(target.name)
        assert evidence and all(len(text) > 10 for text in evidence.values()), target.name
        assert target.confidence in ("high", "medium")
    portable = targets.portable()
    assert (portable.qemu, portable.libvirt) == ("6.2", "8.0")
    assert all(targets.version_tuple(portable.qemu) <= t.qemu_version for t in rows)
