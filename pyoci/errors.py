"""Errors that pyoci reports to its caller as one line, worded as runc words them."""


class PyociError(Exception):
    """A failure the CLI prints as a single line and exits non-zero for."""


class ConfigError(PyociError):
    """config.json is missing, malformed or invalid; the message names the JSON path."""


class ContainerNotFound(PyociError):
    def __init__(self, container_id: str = "") -> None:
        super().__init__("container does not exist")
        self.container_id = container_id


class ContainerExists(PyociError):
    def __init__(self) -> None:
        super().__init__("container with given ID already exists")


class InvalidID(PyociError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"invalid container id format: {container_id}" if container_id
                         else "container id cannot be empty")


class CorruptState(PyociError):
    """state.json cannot be read back (damaged by something other than pyoci)."""
