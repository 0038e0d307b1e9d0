"""AWS's recorded answers (tests/aws-recordings, a copy of ../shared/aws-recordings) and comparing
lambdad's answers with them."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

RECORDINGS = Path(os.environ.get("LAMBDAD_AWS_RECORDINGS", Path(__file__).parent / "aws-recordings"))
_PLACEHOLDER = re.compile(r"<[^>]+>")
# The recordings were made in account 111111111111; lambdad's tests run in its default account.
RECORDED_ACCOUNT, OUR_ACCOUNT = "111111111111", "000000000000"
_VOLATILE = {"LastModified", "ResponseMetadata", "RevisionId", "CodeSha256", "CodeSize", "Location"}


@cache
def _snapshot(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDINGS / "lambda" / name).read_text()))


def recorded(snapshot: str, test: str, key: str) -> Any:
    """One recorded answer: ``recorded("test_lambda_api.snapshot.json", "TestX::test_y", "create")``."""
    for name, entry in _snapshot(snapshot).items():
        if name.endswith(test):
            return entry["recorded-content"][key]
    raise KeyError(test)


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from a recording, ignoring placeholders and volatile members."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        found = []
        keys = (set(expected) | set(actual)) - _VOLATILE
        for key in sorted(keys):
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            elif key not in expected:
                found.append(f"{path}.{key}: not in AWS's answer")
            else:
                found += differences(actual[key], expected[key], f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        return [d for a, e in zip(actual, expected, strict=True) for d in differences(a, e, path)]
    if isinstance(expected, str):
        expected = expected.replace(RECORDED_ACCOUNT, OUR_ACCOUNT)
    if isinstance(expected, str) and (_PLACEHOLDER.search(expected) or expected == "date"):
        pattern = re.escape(expected)
        pattern = re.sub(r"<[^>]+>", ".+", pattern.replace(r"\<", "<").replace(r"\>", ">"))
        pattern = pattern.replace("arn:\\.\\+:", "arn:.+:")
        return (
            []
            if re.fullmatch(pattern, str(actual)) or expected == "date"
            else [f"{path}: {actual!r} !~ {expected!r}"]
        )
    return [] if actual == expected else [f"{path}: expected {expected!r}, got {actual!r}"]
