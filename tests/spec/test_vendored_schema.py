"""The vendored request schema is valid JSON Schema and matches the reference document."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.spec.extract import OUTPUT, REFERENCE, extract, render


def test_the_vendored_schema_is_valid_json_schema() -> None:
    schema = json.loads(OUTPUT.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "messages" in json.dumps(schema) and "$ref" not in json.dumps(schema)


@pytest.mark.skipif(not REFERENCE.exists(), reason="the OpenAPI reference is not checked out")
def test_the_vendored_schema_is_up_to_date() -> None:
    # If this fails, run `python -m tests.spec.extract` and review the diff.
    assert OUTPUT.read_text(encoding="utf-8") == render(extract(REFERENCE))
