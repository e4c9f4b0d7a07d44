"""parse_signal accepts every spelling runc's kill does, and fails in runc's words."""

import signal

import pytest

from pyoci.errors import PyociError
from pyoci.signals import parse_signal


@pytest.mark.parametrize("text", ["KILL", "SIGKILL", "kill", "sigkill", "Kill", "9"])
def test_kill_spellings(text: str) -> None:
    assert parse_signal(text) == signal.SIGKILL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TERM", signal.SIGTERM),
        ("SIGHUP", signal.SIGHUP),
        ("usr1", signal.SIGUSR1),
        ("WINCH", signal.SIGWINCH),
        ("0", 0),
        ("15", 15),
        ("SIGIOT", signal.SIGABRT),
        ("SIGRTMIN", signal.SIGRTMIN),
        ("SIGRTMIN+3", signal.SIGRTMIN + 3),
        ("rtmin+0", signal.SIGRTMIN),
        ("RTMAX-1", signal.SIGRTMAX - 1),
        ("SIGRTMAX", signal.SIGRTMAX),
    ],
)
def test_names_and_numbers(text: str, expected: int) -> None:
    assert parse_signal(text) == expected


@pytest.mark.parametrize(
    "text", ["FOO", "SIGFOO", "", "-9", "999", "RTMIN+99", "RTMAX-99", "RTMIN+x", "SIG_DFL"]
)
def test_unknown(text: str) -> None:
    with pytest.raises(PyociError) as err:
        parse_signal(text)
    assert str(err.value) == f'unknown signal "{text}"'
