"""grader/judging/proxy.py on its own: the excerpts of the student's text the grader may repeat
(student_text, _bounded), the student's exceptions raised here (_exception, subject_exception),
the subject process's two clocks and reply caps (SubjectProcess.exchange, against small
stand-in processes that run no Python), what a Client does with a forged answer (a stand-in
process that replies as told), the proxies' names, and instructor source sent as text
(source_bundle). Proxies of a real subject's objects: test_verdict_wire.py."""

from __future__ import annotations

import json
import struct
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.inside import wire
from grader.judging import proxy
from grader.judging.proxy import Client, SubjectDied, SubjectProcess

# --------------------------------------------------------------------------- excerpts


def test_student_text_is_one_short_escaped_line():
    text = proxy.student_text("x" * 5000 + "\n[grader] fake verdict\x1b[31m")
    assert len(text) == proxy.MAX_STUDENT_TEXT and text.endswith("...")
    text = proxy.student_text("line1\nline2\t\x00 é <b>")
    assert text == "line1\\nline2\\t\\x00 \\xe9 <b>"


def test_student_text_takes_a_limit_and_survives_an_unprintable_object():
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    assert proxy.student_text("abcdef", 5) == "ab..." and proxy.student_text("abcde", 5) == "abcde"
    assert proxy.student_text(Unprintable()) == "<unprintable>"


def test_returned_strings_are_cut():
    value = proxy._bounded({"a": ["y" * 10_000], "b": ("z" * 300, 1.5)})
    assert value["a"][0] == "y" * proxy.MAX_STUDENT_TEXT + "..."
    assert len(value["b"][0]) == proxy.MAX_STUDENT_TEXT + 3 and value["b"][1] == 1.5


def test_returned_keys_are_cut_and_deep_nesting_ends():
    value = proxy._bounded({"k" * 500: 1})
    assert list(value) == ["k" * proxy.MAX_STUDENT_TEXT + "..."]
    deep: list = ["s" * 500]
    for _ in range(5000):  # deeper than Python's recursion limit: the walk stops at depth 20
        deep = [deep]
    bounded = proxy._bounded(deep)
    assert type(bounded) is list and len(bounded) == 1 and bounded is not deep


# --------------------------------------------------------------------------- exceptions


@pytest.mark.parametrize("kind", sorted(proxy.PASSED_EXCEPTIONS))
def test_common_exceptions_keep_their_type(kind):
    e = proxy._exception({"type": kind, "message": "m"})
    assert type(e) is proxy.PASSED_EXCEPTIONS[kind]
    assert proxy.subject_exception(e) == f"{kind}: m"


def test_other_exceptions_become_subject_errors():
    e = proxy._exception({"type": "SystemExit", "message": "bye\n"})
    assert type(e) is proxy.SubjectError and str(e) == "SystemExit: bye\\n"
    empty = proxy._exception({})
    assert type(empty) is proxy.SubjectError and str(empty) == "Exception: "


def test_only_marked_exceptions_count_as_the_students():
    assert proxy.subject_exception(ValueError("x")) is None
    forged = ValueError("x")
    forged.subject_text = "ValueError: x"  # no from_subject mark
    assert proxy.subject_exception(forged) is None


def test_an_opaque_object_equals_only_itself():
    a, b = proxy.Opaque(3, "Thing", "<thing>"), proxy.Opaque(3, "Thing", "<thing>")
    assert a == a and a != b and a != 3
    assert repr(a) == "<Thing from the student's code: <thing>>"


# --------------------------------------------------------------------------- the process


def _replying(tmp_path, *messages: bytes) -> SubjectProcess:
    """A process that writes `messages` (its replies) and then waits, reading nothing."""
    path = tmp_path / "replies"
    path.write_bytes(b"".join(messages))
    return SubjectProcess(["sh", "-c", f"cat '{path}'; exec sleep 60"], {}, str(tmp_path))


def _header(length: int) -> bytes:
    return struct.pack(">Q", length)


BIG = json.dumps({"sizes": [wire.MAX_REPLY_MESSAGE_BYTES]}).encode()


@pytest.fixture
def processes():
    started: list[SubjectProcess] = []
    yield started
    for process in started:
        process.kill()


def test_an_answer_comes_back_as_sent(tmp_path, processes):
    cat = SubjectProcess(["cat"], {}, str(tmp_path))
    processes.append(cat)
    reply, blobs = cat.exchange({"op": "lookup", "name": "f"}, [b"abc"], timeout=10)
    assert reply == {"op": "lookup", "name": "f"} and blobs == [b"abc"]


def test_progress_events_are_counted_and_checked(tmp_path, processes):
    event = wire.pack({"event": "cell", "index": 0}, [])
    done = wire.pack({"errors": []}, [])
    seen = []
    ok = _replying(tmp_path, event, event, done)
    processes.append(ok)
    assert ok.exchange({"op": "init"}, [], 10, seen.append, max_events=2) == ({"errors": []}, [])
    assert seen == [{"event": "cell", "index": 0}] * 2
    extra = _replying(tmp_path, event, event, done)
    processes.append(extra)
    with pytest.raises(SubjectDied, match="broke the grader's protocol.*progress event 2 where 1"):
        extra.exchange({"op": "init"}, [], 10, max_events=1)
    assert extra.stopped_for == {"protocol"} and extra.process.poll() is not None

    def refuse(event):
        raise wire.WireError("not the next cell")

    refused = _replying(tmp_path, event, done)
    processes.append(refused)
    with pytest.raises(SubjectDied, match="not the next cell"):
        refused.exchange({"op": "init"}, [], 10, refuse, max_events=5)
    assert refused.stopped_for == {"protocol"}


@pytest.mark.parametrize("reply, why", [
    (_header(wire.MAX_REPLY_HEADER_BYTES + 1), "header of .* bytes is too large"),
    (_header(2 * wire.MAX_REPLY_ITEMS + 2) + b"[" + b"0," * wire.MAX_REPLY_ITEMS + b"0]",
     "JSON values is too large"),
    (_header(len(BIG)) + BIG, "message of .* bytes is too large"),  # refused before reading
    (_header(4) + b"[1] ", "not a JSON object"),
], ids=["header", "items", "blobs", "not-an-object"])
def test_replies_past_the_caps_end_the_conversation(tmp_path, processes, reply, why):
    process = _replying(tmp_path, reply)
    processes.append(process)
    started = time.monotonic()
    with pytest.raises(SubjectDied, match=why):
        process.exchange({"op": "lookup"}, [], timeout=10)
    assert process.stopped_for == {"protocol"} and time.monotonic() - started < 5
    with pytest.raises(SubjectDied):  # it stays dead: nothing more it says counts
        process.exchange({"op": "lookup"}, [], timeout=10)


def test_a_silent_process_is_killed_by_the_request_clock(tmp_path, processes):
    silent = SubjectProcess(["sleep", "60"], {}, str(tmp_path))
    processes.append(silent)
    started = time.monotonic()
    with pytest.raises(SubjectDied, match="no answer within"):
        silent.exchange({"op": "lookup"}, [], timeout=0.3)
    assert silent.stopped_for == {"timeout"} and time.monotonic() - started < 5


def test_progress_events_cannot_move_the_deadline(tmp_path, processes):
    event = tmp_path / "event"
    event.write_bytes(wire.pack({"event": "cell", "index": 0}, []))
    chatty = SubjectProcess(["sh", "-c", f"while :; do cat '{event}'; sleep 0.05; done"], {},
                            str(tmp_path))
    processes.append(chatty)
    started = time.monotonic()
    with pytest.raises(SubjectDied):
        chatty.exchange({"op": "init"}, [], timeout=5, max_events=10_000,
                        deadline=time.monotonic() + 0.5)
    assert chatty.stopped_for == {"timeout"} and time.monotonic() - started < 3


def test_a_spent_deadline_sends_nothing(tmp_path, processes):
    cat = SubjectProcess(["cat"], {}, str(tmp_path))
    processes.append(cat)
    with pytest.raises(SubjectDied, match="time limit was spent"):
        cat.exchange({"op": "lookup"}, [], timeout=10, deadline=time.monotonic() - 1)
    assert cat.stopped_for == {"timeout"}


def test_a_process_that_ends_is_dead_without_a_flag(tmp_path, processes):
    gone = SubjectProcess([sys.executable, "-I", "-S", "-c", ""], {}, str(tmp_path))
    processes.append(gone)
    gone.process.wait()
    with pytest.raises(SubjectDied, match="ended"):
        gone.exchange({"op": "lookup"}, [], timeout=10)
    assert gone.stopped_for == set()


# --------------------------------------------------------------------------- forged answers


class Scripted:
    """A subject process that answers each request with the next scripted reply (a header, or
    a function of the request that gives (header, blobs))."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.requests: list = []
        self.dead: str | None = None
        self.stopped_for: set[str] = set()

    def exchange(self, header, blobs, timeout, on_event=None, first_timeout=None,
                 max_events=0, deadline=None):
        if self.dead:
            raise SubjectDied(self.dead)
        self.requests.append((header, max_events))
        reply = self.replies.pop(0)
        return reply(header) if callable(reply) else (reply, [])

    def kill(self, why="stopped", kind=None):
        if self.dead is None:
            self.dead = why
            if kind is not None:
                self.stopped_for.add(kind)


def _call(client: Client, *args):
    return client.proxy_function(5, {"name": "f"})(*args)


def test_requests_allow_progress_events_only_for_the_cells_sent():
    process = Scripted({"errors": []}, {"errors": []}, {"missing": True})
    client = Client(process, timeout=1)
    client.request({"op": "init", "cells": [["a", "x = 1"], ["b", "y = 2"]]})
    client.request({"op": "init", "cells": "many"})
    with pytest.raises(KeyError):
        client.lookup("f")
    assert [events for _, events in process.requests] == [2, 0, 0]


def test_an_error_reply_raises_the_students_exception_naming_the_call():
    client = Client(Scripted({"error": {"type": "ValueError", "message": "n < 0"}}), timeout=1)
    with pytest.raises(ValueError, match="n < 0") as raised:
        _call(client, 1)
    assert raised.value.subject_call == "f"
    assert proxy.subject_exception(raised.value) == "ValueError: n < 0"


def test_a_call_sends_the_target_and_its_data_and_cuts_returned_text():
    process = Scripted({"made": [], "after": [], "mutated": [],
                        "value": wire.encode(["t" * 1000, 2], [])})
    client = Client(process, timeout=1)
    assert _call(client, 3, "x") == ["t" * proxy.MAX_STUDENT_TEXT + "...", 2]
    header, _ = process.requests[0]
    assert header["op"] == "call" and header["target"] == {"$ref": 5}
    assert wire.decode(header["args"], []) == (3, "x")


def test_an_argument_changed_in_place_comes_back_into_it():
    x = torch.zeros(3)
    changed = torch.ones(3)

    def answer(header):
        out: list[bytes] = []
        return {"made": [], "after": [], "value": None,
                "mutated": [[0, wire.encode(changed, out)]]}, out

    _call(Client(Scripted(answer), timeout=1), x)
    assert torch.equal(x, changed)


@pytest.mark.parametrize("reply", [
    {"made": [], "after": [], "mutated": [[2, None]], "value": None},  # two tensors were sent
    {"made": [], "after": [], "mutated": [[True, None]], "value": None},
    {"made": [], "after": [], "mutated": [[-1, None]], "value": None},
    {"made": [], "after": [], "mutated": [[0, 5]], "value": None},  # not a tensor
    {"made": [7], "after": [], "mutated": [], "value": None},  # no module was sent
    {"made": [], "after": [{"$d": []}], "mutated": [], "value": None},
    {"made": [], "after": [], "mutated": [], "value": {"$pickle": "..."}},
    {"made": [], "after": [], "mutated": [], "value": {"$T": 0, "dtype": "float32",
                                                       "shape": [1]}},  # no such blob
    {"after": [], "mutated": [], "value": None},
], ids=["index-past", "index-bool", "index-negative", "not-a-tensor", "made", "after", "tag",
        "blob", "missing"])
def test_nonsense_in_an_answer_ends_the_conversation(reply):
    process = Scripted(reply, {"value": 1})
    client = Client(process, timeout=1)
    with pytest.raises(SubjectDied, match="answered nonsense"):
        _call(client, torch.zeros(2), [torch.zeros(2)])
    assert process.stopped_for == {"protocol"}
    with pytest.raises(SubjectDied):
        _call(client, 1)


def test_a_students_names_are_cut_before_they_name_a_proxy():
    client = Client(Scripted(), timeout=1)
    cls = client.proxy_class(7, {"name": "pkg.mod." + "X" * 500 + "\n", "module": "m\x1b",
                                 "lib": [1]})
    assert issubclass(cls, nn.Module) and client.proxy_class(7, {}) is cls
    assert len(cls.__name__) == proxy.MAX_STUDENT_NAME and cls.__name__.isprintable()
    assert cls.__module__ == "m\\x1b" and cls.__subject_library_references__ == ["1"]
    assert client.proxy_class(8, {"name": ""}).__name__ == "StudentModule"
    f = client.proxy_function(9, {"name": "f\n" * 100})
    assert len(f.__name__) == proxy.MAX_STUDENT_NAME and "\n" not in f.__name__
    assert client.proxy_function(9, {"name": "other"}) is f


# --------------------------------------------------------------------------- instructor source


def _twice(x):
    return 2 * x


class Doubled(nn.Module):
    """A module of the checks' making, with a helper of its own module and an imported one."""

    def __init__(self, n):
        super().__init__()
        self.linear = nn.Linear(n, n)

    def forward(self, x):
        return _twice(F.relu(self.linear(x)))


def test_source_bundle_defines_the_class_in_a_fresh_namespace():
    text = proxy.source_bundle(Doubled)
    ns: dict = {}
    exec(compile(text, "<instructor>", "exec"), ns)
    twin, model = ns["Doubled"](3), Doubled(3)
    twin.load_state_dict(model.state_dict())
    x = torch.randn(4, 3)
    assert torch.equal(twin(x), model(x))
    assert "import torch.nn.functional as F" in text and "def _twice" in text
    assert json.dumps(text)  # plain text, fit for the wire
