"""config.md, "Annotations".

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#annotations
"""

from __future__ import annotations

import pytest
from spec_support import (
    assert_error,
    assert_no_container,
    base_config,
    create,
    delete,
    start,
    state,
    wait_status,
    write_config,
)


def refused(pyoci, bundle: str, cid: str, annotations, what: str) -> None:
    cfg = base_config(["true"])
    cfg["annotations"] = annotations
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), what)
    assert_no_container(pyoci, cid)


@pytest.mark.parametrize("value", [["org.example.key=value"], "org.example.key=value", 1])
def test_annotations_must_be_a_key_value_map(pyoci, bundle, cid, value):
    """Annotations: "Annotations MUST be a key-value map"."""
    refused(pyoci, bundle, cid, value, f"create with annotations {value!r}")


def test_annotation_keys_must_not_be_empty(pyoci, bundle, cid):
    """Annotations: "Keys MUST NOT be an empty string"."""
    refused(pyoci, bundle, cid, {"": "value"}, "create with an empty annotation key")


@pytest.mark.parametrize("value", [1, True, None, {"nested": "x"}, ["x"]])
def test_annotation_values_must_be_strings(pyoci, bundle, cid, value):
    """Annotations: "Values MUST be strings"."""
    refused(pyoci, bundle, cid, {"org.example.key": value},
            f"create with annotation value {value!r}")


def test_unknown_annotation_keys_are_handled_like_unknown_properties(pyoci, bundle, cid):
    """Annotations: "Runtimes MUST handle unknown annotation keys like any other unknown
    property" (ignored: no error, the container runs, the state lists them)."""
    annotations = {"com.example.spec-unknown": "1", "org.opencontainers.image.os": "linux",
                   "io.example/with.slash": "", "x": "short key"}
    cfg = base_config(["true"])
    cfg["annotations"] = annotations
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    assert state(pyoci, cid).get("annotations") == annotations
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    delete(pyoci, cid)
