"""The :class:`Container` handle: a container id under a state root."""

from __future__ import annotations

import os

from pyoci import state as st


class Container:
    """A container known to the runtime, addressed by id under ``root``.

    Operations live in sibling modules (``create``, ``start``, ``kill``,
    ``delete``) and are imported on use, so a ``state`` call stays cheap.
    """

    def __init__(self, container_id: str, root: str) -> None:
        from pyoci.validate import check_container_id

        check_container_id(container_id)  # ids name directories: never a path out of root
        self.id = container_id
        self.root = os.path.abspath(root)
        self.dir: str = st.container_dir(self.root, container_id)

    @classmethod
    def create(cls, container_id: str, bundle: str, root: str = "/run/pyoci", **options
               ) -> Container:
        """Create the container from ``bundle``; its init waits for :meth:`start`."""
        from pyoci.container.create import create

        return create(cls(container_id, root), bundle, **options)

    @classmethod
    def run(cls, container_id: str, bundle: str, root: str = "/run/pyoci", **options) -> int:
        """Create and start; in the foreground, wait and return the exit code (see .run)."""
        from pyoci.container.run import run

        return run(container_id, bundle, root, **options)

    @classmethod
    def load(cls, container_id: str, root: str = "/run/pyoci") -> Container:
        """The existing container ``container_id``; raises ContainerNotFound."""
        c = cls(container_id, root)
        st.read_state(c.dir)
        return c

    @staticmethod
    def list(root: str = "/run/pyoci") -> list[dict]:
        """The state of every container under ``root``, sorted by id."""
        try:
            names = sorted(os.listdir(root))
        except FileNotFoundError:
            return []
        from pyoci.errors import InvalidID

        states = []
        for name in names:
            try:
                c = Container(name, root)
            except InvalidID:  # a directory being deleted, or a stranger
                continue
            try:
                stored = st.read_state(c.dir)
            except Exception:  # noqa: BLE001 - a vanished or foreign entry is skipped
                continue
            if stored is not None:
                state = st.oci_state(stored, st.status_of(c.dir, stored))
                state["owner"] = _owner(c.dir)
                states.append(state)
        return states

    def stored(self) -> dict | None:
        return st.read_state(self.dir)

    def status(self) -> str:
        return st.status_of(self.dir, self.stored())

    def state(self) -> dict:
        """The runtime-spec state of the container (with runc's extra fields)."""
        stored = self.stored()
        if stored is None:  # not ready yet: what create has recorded so far
            creating = st.read_creating(self.dir) or {}
            state = {"ociVersion": st.OCI_VERSION, "id": self.id, "pid": 0,
                     "status": st.status_of(self.dir, None),
                     "bundle": creating.get("bundle", ""), "rootfs": creating.get("rootfs", ""),
                     "created": "", "owner": ""}
            if creating.get("annotations"):
                state["annotations"] = creating["annotations"]
            return state
        return st.oci_state(stored, st.status_of(self.dir, stored))

    def start(self) -> None:
        from pyoci.container.start import start

        start(self)

    def kill(self, sig: int, all: bool = False) -> None:  # noqa: A002 - runc's flag name
        from pyoci.container.kill import kill

        kill(self, sig, all_processes=all)

    def exec(self, args: list[str], **options) -> int:
        """Run ``args`` as a new process in the container (runc's ``exec``); its exit
        code, or 0 with ``detach=True``.  ``options``: see
        :func:`pyoci.container.exec.exec_process`."""
        from pyoci.container.exec import exec_process

        return exec_process(self.id, self.root, list(args), **options)

    def delete(self, force: bool = False) -> None:
        from pyoci.container.delete import delete

        delete(self, force=force)

    def __repr__(self) -> str:
        return f"Container({self.id!r}, root={self.root!r})"


def _owner(path: str) -> str:
    """The user owning the state directory, as runc's list shows it (``#uid`` if unnamed)."""
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    return _user_name(uid)


_user_names: dict[int, str] = {}


def _user_name(uid: int) -> str:
    """Looked up once per uid: a `list` of many containers has one owner, usually root.
    (A dict, not functools.cache: functools imports collections on `run`'s path.)"""
    name = _user_names.get(uid)
    if name is None:
        import pwd

        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = f"#{uid}"
        _user_names[uid] = name
    return name
