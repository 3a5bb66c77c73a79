"""Host selections: names, globs, groups, exclusions, reference CPUs, and the errors."""

from __future__ import annotations

import pytest

from cpudb.errors import SelectionError, UnknownHostError
from cpudb.store.selection import load_inventory, resolve

HOSTS = ["cmp-bdw-01", "cmp-clx-01", "cmp-clx-02", "cmp-rome-01", "cmp-rome-02", "cmp-milan-01"]
GROUPS = {"amd": ["cmp-rome-*", "cmp-milan-*"], "clx": ["cmp-clx-*"], "all-but-bdw": ["@amd", "@clx"]}


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("", HOSTS),
        ("cmp-rome-01", ["cmp-rome-01"]),
        ("cmp-rome-*", ["cmp-rome-01", "cmp-rome-02"]),
        ("cmp-rome-01,cmp-clx-02", ["cmp-clx-02", "cmp-rome-01"]),
        ("cmp-rome-01 cmp-clx-02", ["cmp-clx-02", "cmp-rome-01"]),
        ("@amd", ["cmp-rome-01", "cmp-rome-02", "cmp-milan-01"]),
        ("@amd !cmp-rome-02", ["cmp-rome-01", "cmp-milan-01"]),
        ("!cmp-bdw-01", HOSTS[1:]),
        ("@all-but-bdw", HOSTS[1:]),
        ("!@amd", ["cmp-bdw-01", "cmp-clx-01", "cmp-clx-02"]),
        ("cmp-clx-0[12]", ["cmp-clx-01", "cmp-clx-02"]),
    ],
)
def test_resolve(text, hosts):
    assert list(resolve(text, HOSTS, GROUPS).hosts) == hosts


def test_unknown_host_names_the_closest_hosts():
    with pytest.raises(UnknownHostError, match=r"^host 'cmp-rome-1' is not known; closest: cmp-rome-01, cmp-rome-02"):
        resolve("cmp-rome-1", HOSTS, GROUPS)


def test_glob_matching_nothing_is_an_error():
    with pytest.raises(SelectionError, match=r"^host pattern 'cmp-genoa-\*' matches no host"):
        resolve("cmp-genoa-*", HOSTS, GROUPS)


def test_unknown_group_lists_close_groups():
    with pytest.raises(SelectionError, match=r"^group '@amdd' is not known; closest: @amd"):
        resolve("@amdd", HOSTS, GROUPS)


def test_selection_that_excludes_everything_is_an_error():
    with pytest.raises(SelectionError, match=r"selection '@amd !cmp-\*' leaves no hosts"):
        resolve("@amd !cmp-*", HOSTS, GROUPS)


def test_group_cycle_is_reported():
    with pytest.raises(SelectionError, match="group @a includes itself"):
        resolve("@a", HOSTS, {"a": ["@b"], "b": ["@a"]})


def test_reference_cpus_with_planned_counts():
    chosen = resolve("@amd ref:turin*4 ref:genoa", HOSTS, GROUPS, ["ref:turin", "ref:genoa"])
    assert chosen.references == (("ref:genoa", 1), ("ref:turin", 4))
    assert chosen.hosts == ("cmp-rome-01", "cmp-rome-02", "cmp-milan-01")


def test_only_reference_cpus_select_no_real_host():
    assert resolve("ref:turin*2", HOSTS, {}, ["ref:turin"]).hosts == ()


def test_unknown_reference_cpu():
    with pytest.raises(SelectionError, match=r"reference CPU 'ref:turn' is not known; closest: ref:turin"):
        resolve("ref:turn", HOSTS, {}, ["ref:turin"])


def test_inventory_file(tmp_path):
    good = tmp_path / "inventory.yaml"
    good.write_text("groups:\n  amd: ['cmp-rome-*']\n")
    assert load_inventory(good) == {"amd": ["cmp-rome-*"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  amd: cmp-rome-*\n")
    with pytest.raises(SelectionError, match="bad.yaml: expected 'groups:' mapping each group name to a list"):
        load_inventory(bad)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("groups: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(SelectionError, match="tagged.yaml: not a valid inventory"):
        load_inventory(tagged)
