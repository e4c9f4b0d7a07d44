"""The unit tests' fake library: the CLIs' parsing checked without running containers."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from pyoci.errors import ContainerNotFound, PyociError


class Fake:
    """Records library calls; `existing` maps id -> state dict."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.existing: dict[str, dict[str, Any]] = {}
        self.raise_on_load: Exception | None = None
        self.run_code = 0


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    rec = Fake()

    class Container:
        def __init__(self, cid: str) -> None:
            self.cid = cid

        @classmethod
        def create(cls, cid: str, bundle: str, root: str, **kw: Any) -> Container:
            rec.calls.append(("create", cid, bundle, root, kw))
            if cid == "fails":
                raise PyociError("create failed:\nsee above")
            return cls(cid)

        @classmethod
        def load(cls, cid: str, root: str) -> Container:
            rec.calls.append(("load", cid, root))
            if rec.raise_on_load is not None:
                raise rec.raise_on_load
            if cid not in rec.existing:
                raise ContainerNotFound(cid)
            return cls(cid)

        @classmethod
        def list(cls, root: str) -> list[dict[str, Any]]:
            rec.calls.append(("list", root))
            return list(rec.existing.values())

        def start(self) -> None:
            rec.calls.append(("start", self.cid))

        def state(self) -> dict[str, Any]:
            return rec.existing[self.cid]

        def kill(self, sig: int, all: bool = False) -> None:
            rec.calls.append(("kill", self.cid, sig, all))

        def delete(self, force: bool = False) -> None:
            rec.calls.append(("delete", self.cid, force))

    def run(cid: str, bundle: str, root: str, **kw: Any) -> int:
        rec.calls.append(("run", cid, bundle, root, kw))
        if cid == "fails":
            raise PyociError("run failed:\nsee above")
        return rec.run_code

    def exec_process(cid: str, root: str, args: list[str], **kw: Any) -> int:
        rec.calls.append(("exec", cid, root, args, kw))
        if cid == "fails":
            raise PyociError("no such process")
        return rec.run_code

    Container.run = staticmethod(run)  # type: ignore[attr-defined]
    mod = types.ModuleType("pyoci.container")
    mod.Container = Container  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyoci.container", mod)
    for op in ("pause", "resume"):
        def operation(container: Container, op: str = op) -> None:
            rec.calls.append((op, container.cid))

        op_mod = types.ModuleType(f"pyoci.container.{op}")
        setattr(op_mod, op, operation)
        monkeypatch.setitem(sys.modules, f"pyoci.container.{op}", op_mod)
    exec_mod = types.ModuleType("pyoci.container.exec")
    exec_mod.exec_process = exec_process  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyoci.container.exec", exec_mod)
    return rec
