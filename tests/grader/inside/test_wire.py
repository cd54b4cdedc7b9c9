"""grader/inside/wire.py: values and messages between the trusted grader and the subject, data
only. Round trips of each tagged kind, and the refusals of what a forged reply may hold (the
trusted side reads replies with these limits). Modules on the wire and whole verdicts are in
tests/grader/judging/test_verdict_wire.py."""

import io
import json
import struct

import numpy as np
import pytest
import torch

from grader.inside import wire
from grader.inside.wire import WireError, decode, encode, pack, receive


def round_trip(value):
    blobs: list[bytes] = []
    tree = encode(value, blobs)
    json.dumps(tree)  # the tree is plain JSON
    return decode(json.loads(json.dumps(tree)), blobs)


def test_plain_and_tagged_values_round_trip():
    value = {"a": (1, 2.5, None, True), 3: ["s", {"nested": []}], (1, 2): torch.device("cpu"),
             "dtype": torch.bfloat16, "np": np.float32(1.5), "i": np.int64(7)}
    back = round_trip(value)
    assert back == value
    assert type(back["a"]) is tuple and type(back["np"]) is np.float32


@pytest.mark.parametrize("tensor", [torch.arange(6.0).reshape(2, 3), torch.ones(0, 4),
                                    torch.tensor(3, dtype=torch.int64),
                                    torch.randn(4).to(torch.bfloat16),
                                    torch.arange(12.0).reshape(3, 4).T])  # not contiguous
def test_tensors_round_trip(tensor):
    back = round_trip(tensor)
    assert back.dtype == tensor.dtype and torch.equal(back, tensor)


def test_requires_grad_and_non_leaf_tensors():
    leaf = torch.ones(2, requires_grad=True)
    assert round_trip(leaf).requires_grad
    inner = round_trip(leaf * 2)  # an intermediate there: a clone here, gradients to the value
    assert inner.requires_grad and inner.wire_leaf.requires_grad


def test_what_cannot_cross():
    with pytest.raises(TypeError, match="object cannot cross"):
        encode(object(), [])
    with pytest.raises(TypeError, match="complex64 cannot cross"):
        encode(torch.zeros(1, dtype=torch.complex64), [])
    assert encode(object(), [], hook=lambda v, blobs: {"$mine": 1}) == {"$mine": 1}


@pytest.mark.parametrize("tree, blobs, why", [
    ([1, 2], [], "bare JSON list"),
    ({"$T": 0, "dtype": "float32", "shape": [1]}, [], "does not exist"),
    ({"$T": 0, "dtype": "float32", "shape": [2]}, [b"\0" * 4], "do not make"),
    ({"$T": 0, "dtype": "evil", "shape": [1]}, [b"\0" * 4], "unknown dtype"),
    ({"$T": 0, "dtype": "float32", "shape": [-1]}, [b"\0" * 4], "bad shape"),
    ({"$l": [{"$T": 0, "dtype": "float32", "shape": [1]}] * 2}, [b"\0" * 4], "named twice"),
    ({"$d": [[1]]}, [], "pairs"),
    ({"$t": "not a list"}, [], "without a list"),
    ({"$dt": "object"}, [], "unknown dtype"),
    ({"$np": "O", "v": 1}, [], "refused"),
    ({"$unknown": 1}, [], "unknown tag"),
])
def test_forged_trees_are_refused(tree, blobs, why):
    with pytest.raises(WireError, match=why):
        decode(tree, list(blobs))


def test_messages_round_trip():
    blobs: list[bytes] = []
    header = {"kind": "reply", "value": encode(torch.arange(3.0), blobs)}
    got, got_blobs = receive(io.BytesIO(pack(header, blobs)))
    assert got["kind"] == "reply" and "sizes" not in got
    assert torch.equal(decode(got["value"], got_blobs), torch.arange(3.0))


def framed(text: bytes, rest: bytes = b"") -> io.BytesIO:
    return io.BytesIO(struct.pack(">Q", len(text)) + text + rest)


def test_limits_are_checked_before_reading():
    with pytest.raises(WireError, match="header of 101 bytes is too large"):
        receive(framed(b"x" * 101), max_header=100)
    with pytest.raises(WireError, match="JSON values is too large"):
        receive(framed(json.dumps({"a": [1] * 50}).encode()), max_items=10)
    with pytest.raises(WireError, match="message of .* too large"):
        receive(framed(json.dumps({"sizes": [10**9]}).encode()), max_message=10**6)
    assert wire.MAX_REPLY_HEADER_BYTES < wire.MAX_HEADER_BYTES


@pytest.mark.parametrize("text, why", [
    (b"{not json", "not JSON"), (b"[1]", "not a JSON object"),
    (b'{"sizes": [-1]}', "bad blob sizes"), (b'{"sizes": "1"}', "bad blob sizes"),
    (b"[" * 100_000, "not JSON"),  # deep nesting: RecursionError is a WireError too
])
def test_bad_headers(text, why):
    with pytest.raises(WireError, match=why):
        receive(framed(text))


def test_a_closed_connection():
    with pytest.raises(EOFError):
        receive(framed(b'{"sizes": [8]}', b"1234"))
