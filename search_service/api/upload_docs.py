"""The OpenAPI of the two routes that read their body raw (a CSV upload, a signed delivery): litestar documents a
body from a handler's `data` parameter, which these have not, so their operations state the body and headers."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

_TEXT = Schema(type=OpenAPIType.STRING)
_OBJECT = Schema(type=OpenAPIType.OBJECT)
_CSV_EXAMPLE = 'sku,name,price,quantity\nKB-001,Oat Milk 1 L,"1,39",24\n'
_FILE = Schema(type=OpenAPIType.STRING, content_media_type="text/csv", description="The CSV file.")
# The body's media types an upload takes as CSV (what spreadsheets and browsers label a .csv file with)
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "text/tab-separated-values")


@dataclass
class CsvUploadOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The CSV file, as the body or as the multipart part `file` (up to 100 MB).",
            content={
                **{
                    media: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING), example=_CSV_EXAMPLE)
                    for media in CSV_TYPES
                },
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.OBJECT, properties={"file": _FILE}, required=["file"])
                ),
            },
        )


_SIGNED = (
    ("webhook-id", "The delivery's id: one already received is answered 200 `duplicate`, nothing changed."),
    ("webhook-timestamp", "Unix seconds; more than 5 minutes off: 401."),
    ("webhook-signature", "`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the connection's `whsec_` secret."),
)
_DELIVERY_EXAMPLE = {
    "type": "stock.set",
    "data": {"sku": "KB-001", "quantity": 0, "updated_at": "2026-12-03T08:05:00Z"},
}


@dataclass
class SignedDeliveryOperation(Operation):
    def __post_init__(self) -> None:
        headers = [
            Parameter(
                name=name, param_in="header", required=False, description=text, schema=Schema(type=OpenAPIType.STRING)
            )
            for name, text in _SIGNED
        ]  # required for the custom webhook source; a POS connection's source verifies its own headers
        self.parameters = [*(self.parameters or []), *headers]
        self.request_body = RequestBody(
            required=True,
            description="The raw bytes the signature covers; for the custom webhook source: `{type, data}`.",
            content={
                "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT), example=_DELIVERY_EXAMPLE),
                # Lightspeed X-Series posts its webhooks as a form whose `payload` field holds the JSON object
                "application/x-www-form-urlencoded": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            "type": Schema(type=OpenAPIType.STRING),
                            "payload": Schema(type=OpenAPIType.STRING),
                        },
                        description="Lightspeed X-Series: `type` (the topic), `payload` (the API 1.0 object, JSON).",
                    )
                ),
            },
        )
