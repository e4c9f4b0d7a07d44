import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyoci.errors import InvalidID
from pyoci.validate import check_container_id


@pytest.mark.parametrize("cid", ["a", "abc-123", "A_b.c+d", "..a", "a..", "x" * 200])
def test_accepts(cid: str) -> None:
    check_container_id(cid)


@pytest.mark.parametrize("cid", [".", "..", "a/b", "/a", "a b", "a\n", "é", "a:b", "a*"])
def test_rejects(cid: str) -> None:
    with pytest.raises(InvalidID, match="^invalid container id format: "):
        check_container_id(cid)


def test_empty() -> None:
    with pytest.raises(InvalidID, match="^container id cannot be empty$"):
        check_container_id("")


def test_message_names_id_unquoted() -> None:
    with pytest.raises(InvalidID) as exc:
        check_container_id("a/b")
    assert str(exc.value) == "invalid container id format: a/b"


@given(st.text(st.sampled_from("aZ09_+.-/ \n:é\x00"), max_size=6) | st.text(max_size=6))
def test_same_ids_as_runcs_pattern(cid: str) -> None:
    """The check is runc's validateID pattern, [A-Za-z0-9_+.-]+ (and not . or ..)."""
    import re

    valid = re.fullmatch(r"[A-Za-z0-9_+.-]+", cid) is not None and cid not in (".", "..")
    try:
        check_container_id(cid)
    except InvalidID:
        assert not valid
    else:
        assert valid
