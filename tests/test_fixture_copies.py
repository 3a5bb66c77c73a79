"""The vendored fixture dumps are byte-identical to ../shared/fixtures (never edited)."""

import pytest

from conftest import FIXTURES, SHARED

SHARED_FIXTURES = SHARED / "fixtures" / "lscpu"


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="../shared/fixtures is not present")
def test_vendored_fixtures_match_shared_copies():
    shared = {p.name: p.read_bytes() for p in SHARED_FIXTURES.iterdir() if p.is_file()}
    ours = {p.name: p.read_bytes() for p in FIXTURES.iterdir() if p.is_file()}
    assert ours == shared
