"""Five mends of the OpenAPI litestar writes for the body structs.

- A field's `ge=0`: litestar reads msgspec's constraints with a truthiness test, so a minimum of 0 (a quantity, a
  version) was dropped from the schema while the server enforced it (`{"quantity": -1}`, schema-valid, was a 400).
  Query parameters state theirs with `schema_extra` (params.py); the rules the server checks in code are stated by
  request_rules.py.
- An optional body (a DELETE's clock, `data: X | None = None`) is written `required: true`, as `oneOf [X, null]`.
- A struct that forbids unknown fields: litestar leaves `additionalProperties` out, so a client generated from the
  schema sends what the server refuses (400 naming the field). `additionalProperties: false`.
- A union of `int` and `float` (a batch item's `quantity`: `int | float | str`) as `oneOf`: a whole number matches
  both `integer` and `number`, so every whole quantity, the schema's own example too, was invalid. `anyOf` instead.
- An example's null members: litestar's writer drops every None of a dict (how it leaves unset spec fields out),
  so an example lost the fields that are null, ones its schema requires too. `ExampleWithNulls` keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.openapi.spec import Example, OpenAPI, Schema
from litestar.openapi.spec.enums import OpenAPIType


def _has_zero_minimum(info: Any) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _has_zero_minimum(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_has_zero_minimum(member) for member in info.types)
    return isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType) and info.ge == 0


def state_body_rules(openapi: OpenAPI, structs: Iterable[type[msgspec.Struct]]) -> None:
    """On these structs' component schemas: `minimum: 0` on the properties whose field has `ge=0`, and
    `additionalProperties: false` where the struct forbids unknown fields."""
    schemas = openapi.components.schemas or {} if openapi.components else {}
    for struct in structs:
        schema = schemas.get(struct.__name__)
        if not isinstance(schema, Schema) or not schema.properties:
            continue
        if struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        for field in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
            prop = schema.properties.get(field.encode_name)
            if isinstance(prop, Schema) and _has_zero_minimum(field.type):
                prop.minimum = 0


def overlapping_unions_as_any_of(openapi: OpenAPI) -> None:
    """`oneOf` → `anyOf` on the component schemas' properties whose members include both integer and number."""
    schemas = openapi.components.schemas or {} if openapi.components else {}
    for schema in schemas.values():
        for prop in (schema.properties or {}).values() if isinstance(schema, Schema) else ():
            members = prop.one_of if isinstance(prop, Schema) else None
            kinds = {getattr(member, "type", None) for member in members or ()}
            if isinstance(prop, Schema) and {OpenAPIType.INTEGER, OpenAPIType.NUMBER} <= kinds:
                prop.any_of, prop.one_of = prop.one_of, None


def optional_bodies(openapi: OpenAPI, operations: Iterable[tuple[str, str]]) -> None:
    """`requestBody.required: false` on these (path, method) operations, whose body may be left out, and its schema
    the body's own type, `allOf [X]` as litestar writes a required one: `oneOf [X, null]` made a generated client's
    call without a body send its unset default as JSON (openapi-python-client: a TypeError, nothing sent)."""
    for path, method in operations:
        item = (openapi.paths or {}).get(path)
        operation = getattr(item, method, None) if item is not None else None
        if operation is None or operation.request_body is None:
            continue
        operation.request_body.required = False
        for media in (operation.request_body.content or {}).values():
            schema = media.schema
            if isinstance(schema, Schema) and schema.one_of:  # leaving the body out says "none"; null is not named
                schema.all_of = [m for m in schema.one_of if getattr(m, "type", None) != OpenAPIType.NULL]
                schema.one_of = None


class ExampleWithNulls(Example):
    """An Example whose value is written as given (JSON-ready), its null members included."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        if self.value is not None:
            schema["value"] = self.value
        return schema
