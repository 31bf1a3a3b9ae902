"""The body scan for numbers msgspec reads as 0.0 though they are not 0 (`1e-400`): found in every spelling, and
a body of many ordinary numbers is passed over without the slow pattern."""

import json

import pytest

from search_service.ingest.json_faults import underflow_field

ZEROS_330 = "0." + "0" * 330 + "1"  # 1e-331: below a float's smallest (about 5e-324)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"price": 1e-400}', "price"),
        (b'{"items": [{"price": 1}, {"price": 2E-0400}]}', "items[1].price"),
        (b'{"price": 5e-1000}', "price"),
        (('{"price": ' + ZEROS_330 + "}").encode(), "price"),
        (b'{"price": 1e-5, "quantity": 0.000}', None),
        (b'{"price": 0e-400}', None),
        (b'{"price": 1.25, "quantity": 3}', None),
    ],
)
def test_a_number_that_reads_as_zero_is_named_and_none_other(body: bytes, field: str | None) -> None:
    assert underflow_field(body) == field


def test_a_large_body_of_ordinary_numbers_is_not_scanned_by_the_pattern() -> None:
    # The substring checks pass such a body over; a tiny number appended to it is still found.
    items = [{"sku": f"S{i}", "price": 1.25 + i, "quantity": i} for i in range(2_000)]
    body = json.dumps({"items": items}).encode()
    assert b"e-" not in body and b".000" not in body
    assert underflow_field(body) is None
    assert underflow_field(body[:-2] + b', {"price": 7e-999}]}') == "items[2000].price"
