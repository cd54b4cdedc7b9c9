"""grader/inside/subject.py's Server, driven in this process over in-memory streams (no sandbox,
no subprocess): the requests it answers, errors returned as bounded data, handles for what is not
data, in-place changes reported by index, the machine played for one call only, and the bounds
on what a request may build or keep (optimizers on the list, traced calls, kept tapes). The
subject as the verdict's real process: tests/grader/judging/test_verdict_wire.py."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from grader.inside import subject, wire


def serve(requests: list, ns: dict | None = None) -> tuple[subject.Server, list[dict]]:
    """Each request (a header, or (header, blobs)) answered in order; the replies' headers,
    with their tensors decoded into `value` where there is one."""
    reader = io.BytesIO(b"".join(wire.pack(*(r if isinstance(r, tuple) else (r, [])))
                                 for r in requests))
    writer = io.BytesIO()
    server = subject.Server(reader, writer)
    server.ns.update(ns or {})
    server.serve()  # until the requests run out
    writer.seek(0)
    replies = []
    while writer.tell() < len(writer.getvalue()):
        header, blobs = wire.receive(writer)
        header["blobs"] = blobs
        replies.append(header)
    return server, replies


def call(target, *args, **header) -> tuple[dict, list[bytes]]:
    blobs: list[bytes] = []
    return {"op": "call", "target": target, "args": wire.encode(tuple(args), blobs),
            "kwargs": wire.encode({}, blobs), **header}, blobs


def value(reply: dict):
    return wire.decode(reply["value"], reply["blobs"], lambda tree, blobs: tree)


# --------------------------------------------------------------------------- requests


def test_unknown_requests_are_refused_and_the_next_one_answered():
    _, replies = serve([{"op": "exec", "source": "print(1)"}, {"source": "x"},
                        {"op": "lookup", "name": "x"}], {"x": 3})
    assert replies[0]["error"]["type"] == "ValueError"
    assert replies[0]["error"]["message"] == "unknown request 'exec'"
    assert replies[1]["error"]["message"] == "unknown request None"
    assert value(replies[2]) == 3


def test_init_runs_every_cell_in_order_and_reports_each_error():
    cells = [["a", "x = 1"], ["b", "raise ValueError('bad')"], ["c", "raise SystemExit(3)"],
             ["d", "y = x + 1"]]
    server, replies = serve([{"op": "init", "cells": cells}])
    events, (done,) = replies[:4], replies[4:]
    assert [e["event"] for e in events] == ["cell"] * 4
    assert [e["index"] for e in events] == [0, 1, 2, 3]  # each before its cell runs
    assert [(label, error["type"], error["message"]) for label, error in done["errors"]] == [
        ("b", "ValueError", "bad"), ("c", "SystemExit", "3")]
    assert server.ns["y"] == 2  # the cells after an error ran


def test_errors_are_bounded_data():
    cells = [["long", "raise ValueError('x' * 100_000)"],
             ["odd", "class E(Exception):\n    def __str__(self):\n        raise OSError\n"
                     "raise E()"]]
    _, replies = serve([{"op": "init", "cells": cells}])
    (long, odd) = [error for _, error in replies[-1]["errors"]]
    assert len(long["message"]) == subject.MAX_MESSAGE
    assert len(long["traceback"]) <= subject.MAX_MESSAGE
    assert odd["type"] == "E" and odd["message"] == "<unprintable>"


# --------------------------------------------------------------------------- what is not data


class Loud:
    def __repr__(self):
        return "L" * 10_000


class Mute:
    def __repr__(self):
        raise RuntimeError("no repr")


def test_lookups_answer_data_or_a_handle():
    def f(n):
        return n

    ns = {"f": f, "g": f, "Loud": Loud, "loud": Loud(), "mute": Mute(), "n": [1, "two"]}
    _, replies = serve([{"op": "lookup", "name": name}
                        for name in ("f", "g", "Loud", "loud", "mute", "n", "absent")], ns)
    fn, same, cls, loud, mute, data, absent = (r.get("value") for r in replies)
    assert fn["$fn"] == same["$fn"] and fn["name"].endswith("f") and fn["lib"] == []
    assert cls["$cls"] not in (fn["$fn"],) and cls["name"] == "Loud"
    assert loud["type"] == "Loud" and loud["repr"] == "L" * 200
    assert mute["type"] == "Mute" and mute["repr"] == "<Mute>"
    assert value(replies[5]) == [1, "two"]
    assert absent is None and replies[6] == {"missing": True, "blobs": []}


def test_a_handle_nobody_was_given_is_an_error_not_an_end():
    def f():
        return 1

    _, replies = serve([call({"$ref": 99}), {"op": "copy", "ref": 99},
                        {"op": "backward", "tape": 5, "grad": None},
                        {"op": "lookup", "name": "f"}, call({"$ref": 1})], {"f": f})
    assert [r["error"]["type"] for r in replies[:3]] == ["KeyError"] * 3
    assert value(replies[4]) == 1


# --------------------------------------------------------------------------- calls


def test_tensors_changed_in_place_are_reported_by_index():
    def bump_second(a, b):
        b.add_(1)
        return None

    _, replies = serve([{"op": "lookup", "name": "f"},
                        call({"$ref": 1}, torch.zeros(2), torch.zeros(3))], {"f": bump_second})
    reply = replies[1]
    assert [index for index, _ in reply["mutated"]] == [1]
    assert torch.equal(wire.decode(reply["mutated"][0][1], reply["blobs"]), torch.ones(3))


@pytest.mark.parametrize("machine", [[True, False], [False, True], [1], "cuda", None])
def test_the_machine_is_played_for_the_call_only(machine):
    def sees():
        return [torch.cuda.is_available(), torch.backends.mps.is_available()]

    real = sees()
    _, replies = serve([{"op": "lookup", "name": "sees"}, call({"$ref": 1}, machine=machine)],
                       {"sees": sees})
    played = machine if isinstance(machine, list) and len(machine) == 2 else real
    assert value(replies[1]) == played
    assert sees() == real


def test_an_optimizer_off_the_list_is_refused():
    def step(model, optimizer):
        return None

    blobs: list[bytes] = []
    model = {"$new": wire.encode(wire.describe(nn.Linear(2, 2), lambda m: None), blobs)}
    spec = {"kind": "Evil", "groups": []}
    request = {"op": "call", "target": {"$ref": 1},
               "args": {"$t": [model, {"$opt": spec}]}, "kwargs": wire.encode({}, blobs)}
    _, replies = serve([{"op": "lookup", "name": "step"}, (request, blobs)], {"step": step})
    error = replies[1]["error"]
    assert (error["type"], error["message"]) == ("ValueError",
                                                 "optimizer 'Evil' is not on the list")


def test_the_calls_of_a_watched_module_are_bounded(monkeypatch):
    monkeypatch.setattr(subject, "MAX_TRACED_CALLS", 3)

    def run(model, times):
        for _ in range(times):
            model(torch.ones(1, 2))

    def request(times):
        blobs: list[bytes] = []
        tree = wire.describe(nn.Linear(2, 2), lambda m: {"trace": 0, "events": ["post"]})
        return ({"op": "call", "target": {"$ref": 1},
                 "args": {"$t": [{"$new": wire.encode(tree, blobs)}, times]},
                 "kwargs": wire.encode({}, blobs)}, blobs)

    _, replies = serve([{"op": "lookup", "name": "run"}, request(3), request(4)], {"run": run})
    assert len(wire.decode(replies[1]["local_trace"], replies[1]["blobs"])) == 3
    assert replies[2]["error"]["type"] == "RuntimeError"
    assert replies[2]["error"]["message"].startswith("more than 3 forward passes")


def test_only_the_last_tapes_are_kept_for_backward():
    layer = nn.Linear(2, 1)

    def forward(n):
        blobs: list[bytes] = []
        return ({"op": "call", "target": {"$ref": 1}, "method": "forward", "grad": True,
                 "tape": True, "push": [[1, wire.encode(wire.module_state(layer), blobs)]],
                 "args": wire.encode((torch.ones(1, 2),), blobs),
                 "kwargs": wire.encode({}, blobs)}, blobs)

    def backward(tape):
        blobs: list[bytes] = []
        return {"op": "backward", "tape": tape, "grad": wire.encode(torch.ones(1, 1), blobs)}, blobs

    n = subject.MAX_TAPES + 1
    _, replies = serve([{"op": "lookup", "name": "layer"}, *(forward(i) for i in range(n)),
                        backward(1), backward(n)], {"layer": layer})
    assert [r["tape"] for r in replies[1:n + 1]] == list(range(1, n + 1))
    assert "error" in replies[n + 1]  # the oldest forward was let go
    last = replies[n + 2]
    params = wire.decode(last["params"], last["blobs"])
    assert torch.equal(params[0], torch.ones(1, 2)) and torch.equal(params[1], torch.ones(1))


def test_a_copy_is_a_new_object_with_a_new_handle():
    layer = nn.Linear(2, 2)
    server, replies = serve([{"op": "lookup", "name": "layer"}, {"op": "copy", "ref": 1}],
                            {"layer": layer})
    original, twin = replies[0]["value"]["$obj"], replies[1]["value"]["$obj"]
    assert original == 1 and twin != original
    assert server.objects[twin] is not layer
    assert torch.equal(server.objects[twin].weight, layer.weight)
