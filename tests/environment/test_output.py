"""Output as log events: lines, long lines split as AWS splits them, and the bounded tail."""

from __future__ import annotations

from lambdad.environment.output import MAX_EVENT_BYTES, LineSplitter, Tail


def test_lines_become_events_and_a_partial_line_waits() -> None:
    lines = LineSplitter()
    assert lines.feed(b"one\ntw") == ["one"]
    assert lines.feed(b"o\n\nthree") == ["two", ""]
    assert lines.feed(b"\n") == ["three"]


def test_a_line_past_the_event_limit_becomes_several_events_even_without_a_newline() -> None:
    lines = LineSplitter()
    events = lines.feed(b"z" * (2 * MAX_EVENT_BYTES + 10))
    assert [len(e) for e in events] == [MAX_EVENT_BYTES, MAX_EVENT_BYTES]  # the rest waits
    assert lines.feed(b"\n") == ["z" * 10]


def test_a_split_never_cuts_a_utf8_character() -> None:
    lines = LineSplitter(limit=10)
    events = lines.feed("aaaaaaaaaé".encode() + b"\n")  # é is two bytes, across the limit
    assert events == ["aaaaaaaaa", "é"]
    assert all(len(e.encode()) <= 10 for e in events)


def test_bytes_that_are_not_utf8_stay_under_the_event_limit() -> None:
    (event,) = LineSplitter().feed(b"\xff" * MAX_EVENT_BYTES + b"\n")
    assert len(event.encode()) <= MAX_EVENT_BYTES


def test_the_tail_keeps_the_last_4_kb_as_whole_lines_where_they_fit() -> None:
    tail = Tail()
    for n in range(1000):
        tail.add(f"line {n:04} " + "." * 90)
    text = tail.text()
    assert 4096 <= len(text.encode()) < 4096 + 120
    assert text.endswith("line 0999 " + "." * 90 + "\n")


def test_one_huge_line_keeps_only_its_end() -> None:
    tail = Tail()
    tail.add("a" * 10**6 + "END")
    assert tail.text() == "a" * 4093 + "END\n"


def test_a_gap_ends_the_line_in_progress() -> None:
    lines = LineSplitter()
    assert lines.feed(b"before the gap") == []
    assert lines.break_line() == ["before the gap"]
    assert lines.break_line() == []
    assert lines.feed(b"after\n") == ["after"]
