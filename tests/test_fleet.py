"""Common and differing flags over selections, checked against plain set arithmetic."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from cpudb.inputs.parse import parse_file
from cpudb.store import fleet

FLAGS = {p.name.removesuffix(".txt"): parse_file(p).flags for p in FIXTURES.glob("*.txt")}
NAMES = sorted(FLAGS)


def common_of(conn, hosts):
    fleet.select(conn, ",".join(hosts))
    return set(fleet.common_flags(conn).common)


def test_common_flags_of_the_whole_fixture_set(fixtures_conn):
    fleet.select(fixtures_conn, "")
    result = fleet.common_flags(fixtures_conn)
    expected = set.intersection(*(set(f) for f in FLAGS.values()))
    assert set(result.common) == expected
    assert result.total_hosts == 23
    counts = {f.flag: f.hosts for f in result.partial}
    assert counts["avx2"] == sum("avx2" in f for f in FLAGS.values()) == 20


def test_diff_of_the_two_gold_6230_microcode_states(fixtures_conn):
    result = fleet.diff(fixtures_conn, "intel-gold6230-1", "intel-gold6230-2")
    assert result.only_a == ("hle", "rtm")
    assert result.only_b == ()
    assert result.common == 134


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8, unique=True), st.sampled_from(NAMES))
def test_adding_a_host_never_grows_the_common_set(fixtures_conn, hosts, extra):
    before = common_of(fixtures_conn, hosts)
    after = common_of(fixtures_conn, hosts + [extra])
    assert after <= before
    assert before == set.intersection(*(set(FLAGS[h]) for h in hosts))


@settings(max_examples=23, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.sampled_from(NAMES))
def test_the_common_set_of_one_host_is_its_own_flag_set(fixtures_conn, host):
    assert common_of(fixtures_conn, [host]) == set(FLAGS[host])


def test_selected_hosts_facts(fleet_conn):
    fleet.select(fleet_conn, "@cascadelake")
    rows = fleet.selected_hosts(fleet_conn)
    assert [(r.host, r.microcode, r.n_flags, r.is_guest) for r in rows] == [
        ("cmp-clx-01", "0x5000021", 136, False),
        ("cmp-clx-02", "0x5002f01", 134, False),
    ]
