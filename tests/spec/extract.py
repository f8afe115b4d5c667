"""Extract CreateChatCompletionRequest from the OpenAPI document as one resolved JSON schema.

The result, ``create_chat_completion_request.schema.json`` beside this file, is what the
loopback OpenAI test server validates every chat request body against. Regenerate it
after updating the reference document::

    python -m tests.spec.extract [path/to/openai-openapi.yaml]

What the extraction does, so that plain JSON Schema validators (jsonschema) read it:

* every ``$ref`` into ``#/components/schemas`` is inlined (the fragment has no cycles);
* OpenAPI's ``nullable: true`` becomes an explicit ``null`` alternative;
* documentation-only keys (descriptions, examples, ``x-*`` vendor extensions, the
  OpenAPI ``discriminator``) are dropped to keep the file reviewable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = "CreateChatCompletionRequest"
HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "create_chat_completion_request.schema.json"
REFERENCE = HERE.parents[1].parent / "shared" / "reference" / "openai-openapi.yaml"
_DROPPED = {"description", "example", "examples", "discriminator", "deprecated", "beta", "title"}


def _resolve(node: Any, schemas: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, schemas, stack) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        if name in stack:
            raise ValueError(f"cyclic $ref {' -> '.join((*stack, name))}")
        result.update(_resolve(schemas[name], schemas, (*stack, name)))
    for key, value in node.items():
        if key == "$ref" or key in _DROPPED or key.startswith("x-"):
            continue
        if key == "properties":
            result[key] = {k: _resolve(v, schemas, stack) for k, v in value.items()}
        else:
            result[key] = _resolve(value, schemas, stack)
    if result.pop("nullable", False):
        result = _nullable(result)
    return result


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def extract(reference: Path = REFERENCE) -> dict[str, Any]:
    """The resolved request schema from the OpenAPI document at ``reference``."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(reference.read_text(encoding="utf-8"), Loader=loader)
    schemas = document["components"]["schemas"]
    schema = _resolve(schemas[ROOT], schemas, (ROOT,))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"{ROOT} from the OpenAI OpenAPI document {document['info']['version']}, "
            "resolved by tests/spec/extract.py; do not edit by hand."
        ),
        **schema,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    reference = Path(argv[0]) if argv else REFERENCE
    OUTPUT.write_text(render(extract(reference)), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
