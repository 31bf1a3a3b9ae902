"""The API's request class: a JSON body whose number is out of range (`1e309`) gets a 400 that names the field.

msgspec refuses such a number while decoding the body, before any field is known, and says only "Number out of
range - at `$[...]`". This class finds the field the way litestar names validation errors (`price`,
`items[3].price`) and raises `BadParameter`, answered in the API's JSON error format.
"""

from __future__ import annotations

import json
import math
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

from search_service.api.params import BadParameter

_OUT_OF_RANGE = object()


def _float_or_marker(text: str) -> Any:
    value = float(text)
    return _OUT_OF_RANGE if math.isinf(value) else value


def _path_of(value: Any, path: str) -> str | None:
    if value is _OUT_OF_RANGE:
        return path
    children: Any = ()
    if isinstance(value, dict):
        children = ((f"{path}.{key}" if path else str(key), child) for key, child in value.items())
    elif isinstance(value, list):
        children = ((f"{path}[{i}]", child) for i, child in enumerate(value))
    for child_path, child in children:
        found = _path_of(child, child_path)
        if found is not None:
            return found
    return None


def out_of_range_field(body: bytes) -> str | None:
    """The path of the first number in this JSON body too large for a float (`price`, `items[3].price`), if any."""
    try:
        parsed = json.loads(body, parse_float=_float_or_marker, parse_constant=float)
    except (ValueError, RecursionError):
        return None
    return _path_of(parsed, "")


class PlinqyRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except SerializationException:
            field = out_of_range_field(await self.body())
            if field:
                raise BadParameter(field, "must be a finite number (this one is out of range)") from None
            raise
