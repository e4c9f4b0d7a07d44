import pytest

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
