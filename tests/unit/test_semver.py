"""config.semver_major reads ociVersion without compiling the SemVer expression (issue 7):
it must say exactly what semver.org's expression says, for every string."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.config import SEMVER_PATTERN, _plain_semver_major, semver_major

_EXPR = re.compile(SEMVER_PATTERN)


def _expected(version: str) -> int | None:
    m = _EXPR.fullmatch(version)
    return None if m is None else int(m.group(1))


@pytest.mark.parametrize("version", [
    "1.0.0", "1.0.2-dev", "1.2.3-rc.1+build.5", "0.0.0", "10.20.30", "1.0.0-0.3.7",
    "1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0+21AF26D3----117B344092BD", "1.0.0-0A.is.legal",
    "01.0.0", "1.01.0", "1.0", "1.0.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b",
    "1.0.0+a..b", "1.0.0-+", "", "v1.0.0", "1.0.0 ", " 1.0.0", "1.0.0\n", "1.0.0-a+b+c",
    "1.0.0-é", "1.٣.0", "١.0.0", "1٣.0.0", "1.0.0-٣", "1.0.0-1٣", "1.0.0-٣a", "1.0.0-a٣",
    "1.0.0+٣", "99999999999999999999.0.0"])
def test_known_versions(version):
    assert semver_major(version) == _expected(version)


_ALPHABET = "0123456789.-+aZx٣é \n"


@settings(max_examples=1000, database=None, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=14))
def test_any_string(version):
    assert semver_major(version) == _expected(version)


@settings(max_examples=150, database=None, deadline=None)
@given(st.from_regex(_EXPR, fullmatch=True))
def test_any_semver(version):
    """Valid versions: the plain reading vouches for every ASCII one itself."""
    assert semver_major(version) == _expected(version)
    if version.isascii():
        assert _plain_semver_major(version) == _expected(version)
