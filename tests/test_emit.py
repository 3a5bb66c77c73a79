"""Configuration emitters: exact text for each platform and Nova release."""

from __future__ import annotations

import pytest

from cpudb.emit import ConfigInput, kubevirt, libvirt_xml, nova, nova_number, proxmox, qemu
from cpudb.errors import CpudbError

CONFIG = ConfigInput(
    model="Cascadelake-Server-v5",
    model_alias="Cascadelake-Server-v5",
    qemu_model="Cascadelake-Server-v5",
    proxmox_model="Cascadelake-Server-v5",
    add=(("pcid", "pcid"), ("tsc-adjust", "tsc_adjust")),
    remove=(("pku", "pku"),),
    kvm_dropped=(("monitor", "monitor"),),
    pool="@clx",
)


def body(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(("#", "<!--"))]


def test_nova_default_release():
    assert body(nova(CONFIG)) == [
        "[libvirt]",
        "cpu_mode = custom",
        "cpu_models = Cascadelake-Server-v5",
        "cpu_model_extra_flags = pcid, tsc_adjust, -pku",
    ]
    assert "not listed: monitor" in nova(CONFIG)


def test_nova_before_train_has_one_model_and_before_wallaby_no_minus():
    from dataclasses import replace

    rocky = nova(replace(CONFIG, nova_release="rocky"))
    assert "cpu_model = Cascadelake-Server-v5" in rocky
    assert "cpu_model_extra_flags = pcid, tsc_adjust\n" in rocky
    assert "Nova before Wallaby cannot disable features: pku" in rocky
    assert "compareCPU" in rocky
    train = nova(replace(CONFIG, nova_release="train"))
    assert "cpu_models = Cascadelake-Server-v5" in train
    assert "-pku" in nova(replace(CONFIG, nova_release="wallaby"))
    assert "compareHypervisorCPU" in nova(replace(CONFIG, nova_release="2024.1"))


@pytest.mark.parametrize(("name", "number"), [("rocky", 18), ("Wallaby", 23), ("2024.1", 29), ("27.1.0", 27)])
def test_nova_release_names(name, number):
    assert nova_number(name) == number


def test_unknown_nova_release():
    with pytest.raises(CpudbError, match="unknown Nova release 'grizzly'"):
        nova_number("grizzly")


def test_libvirt_xml():
    assert body(libvirt_xml(CONFIG)) == [
        "<cpu mode='custom' match='exact' check='full'>",
        "  <model fallback='forbid'>Cascadelake-Server-v5</model>",
        "  <feature policy='require' name='pcid'/>",
        "  <feature policy='require' name='tsc_adjust'/>",
        "  <feature policy='disable' name='pku'/>",
        "  <feature policy='disable' name='monitor'/>",
        "</cpu>",
    ]


def test_libvirt_xml_comment_cannot_be_broken_by_the_pool_name():
    from dataclasses import replace

    text = libvirt_xml(replace(CONFIG, pool="x --> <script>"))
    assert "-->" not in text.splitlines()[0][4:-3] and "<script>" not in text


def test_qemu_argument():
    assert qemu(CONFIG) == "-cpu Cascadelake-Server-v5,+pcid,+tsc-adjust,-pku,-monitor,enforce\n"


def test_proxmox_section():
    assert body(proxmox(CONFIG)) == [
        "cpu-model: cpudb-clx",
        "    flags +pcid;+tsc-adjust;-pku;-monitor",
        "    reported-model Cascadelake-Server-v5",
    ]


def test_kubevirt_yaml():
    import yaml

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
