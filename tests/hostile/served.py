"""Every route the app serves, and requests for it built from its OpenAPI schema, so a route added later
is attacked by the hostile-input tests without anyone listing it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # template, e.g. /v1/memories/{memory_id}
    path_params: tuple[str, ...]
    query_params: tuple[str, ...] = ()
    body: dict[str, Any] | None = None  # JSON schema of the body, $refs unresolved
    in_schema: bool = True

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Schema:
    """The app's OpenAPI document, for resolving $refs."""

    spec: dict[str, Any]
    operations: list[Operation] = field(default_factory=list)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec["components"]["schemas"][name]
        return schema


def served_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every HTTP route, included routers flattened."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # an included router (FastAPI >= 0.13x keeps them lazily)
            for context in contexts():
                for method in context.original_route.methods or ():
                    yield method, context.path
        else:
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    yield method, getattr(route, "path", "")


def operations(app: FastAPI) -> Schema:
    """Every served route as an Operation; the schema's own operations must all be among them."""
    schema = Schema(app.openapi())
    documented = {(m.upper(), p): op for p, ops in schema.spec["paths"].items() for m, op in ops.items()}
    for method, path in sorted(set(served_routes(app))):
        op = documented.pop((method, path), None)
        params = (op or {}).get("parameters", [])
        body = (op or {}).get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        schema.operations.append(
            Operation(
                method=method,
                path=path,
                path_params=tuple(re.findall(r"{(\w+)}", path)),
                query_params=tuple(p["name"] for p in params if p["in"] == "query"),
                body=body,
                in_schema=op is not None,
            )
        )
    assert not documented, f"documented but not found among the served routes: {sorted(documented)}"
    return schema


def example(schema: Schema, node: dict[str, Any], overrides: dict[str, Any], name: str | None = None) -> Any:
    """A value the schema accepts: required fields only, plus any optional field named in `overrides`."""
    if name in overrides:
        return overrides[name]
    node = schema.resolve(node)
    if "anyOf" in node:
        branch = next(b for b in node["anyOf"] if schema.resolve(b).get("type") != "null")
        return example(schema, branch, overrides)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        wanted = [k for k in properties if k in node.get("required", []) or k in overrides]
        return {k: example(schema, properties[k], overrides, k) for k in wanted}
    if kind == "array":
        return [example(schema, node["items"], overrides)] * max(1, node.get("minItems", 1))
    if kind == "string":
        return "2026-01-01T00:00:00Z" if node.get("format") == "date-time" else "x"
    if kind == "integer":
        return node.get("minimum", 1)
    if kind == "number":
        return node.get("minimum", 0.5)
    if kind == "boolean":
        return False
    raise AssertionError(f"no example for schema {node}")


def string_paths(schema: Schema, node: dict[str, Any], at: JsonPath = ()) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    """Where a body can hold text: (path, the schema of the object holding it) for every string field."""
    node = schema.resolve(node)
    for branch in node.get("anyOf", []):
        yield from string_paths(schema, branch, at)
    if node.get("type") == "string" and at:
        yield at, node
    elif node.get("type") == "object":
        for key, child in node.get("properties", {}).items():
            yield from string_paths(schema, child, (*at, key))
    elif node.get("type") == "array":
        yield from string_paths(schema, node["items"], (*at, 0))


def put(schema: Schema, body: Any, root: dict[str, Any], path: JsonPath, value: Any) -> Any:
    """`body` with `value` at `path`, building the containers on the way from the schema where missing."""
    if not path:
        return value
    node = schema.resolve(root)
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = node["items"] if node.get("type") == "array" else _branch(schema, node, "array")["items"]
        elements = body if isinstance(body, list) and body else [example(schema, items, {})]
        return [put(schema, elements[0], items, rest, value), *elements[1:]]
    obj = node if node.get("type") == "object" else _branch(schema, node, "object")
    fields: dict[str, Any] = dict(body) if isinstance(body, dict) else example(schema, obj, {})
    fields[head] = put(schema, fields.get(head), obj["properties"][head], rest, value)
    return fields


def _branch(schema: Schema, node: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(schema.resolve(b) for b in node.get("anyOf", []) if schema.resolve(b).get("type") == kind)
