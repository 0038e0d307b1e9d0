from lambdad.events.sources.filter_views import json_or_text


def test_json_payloads_are_parsed_from_bytes_and_text() -> None:
    assert json_or_text(b'{"kind": "order", "n": 1}') == {"kind": "order", "n": 1}
    assert json_or_text('[1, "two"]') == [1, "two"]


def test_payloads_that_are_not_json_stay_text() -> None:
    assert json_or_text(b"plain words") == "plain words"
    assert json_or_text("plain words") == "plain words"


def test_bytes_that_are_not_utf8_become_text_with_replacement_characters() -> None:
    assert json_or_text(b"\xffok") == "\ufffdok"
