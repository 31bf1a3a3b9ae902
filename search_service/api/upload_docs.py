"""The OpenAPI of the two routes that read their body raw (a CSV upload, a signed delivery): litestar documents a
body from a handler's `data` parameter, which these have not, so their operations state the body and headers."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

_TEXT = Schema(type=OpenAPIType.STRING)
_OBJECT = Schema(type=OpenAPIType.OBJECT)
_CSV_EXAMPLE = 'sku,name,price,quantity\nKB-001,Oat Milk 1 L,"1,39",24\n'
# `format: binary` beside 3.1's contentMediaType: generators take only that for a file part (openapi-python-client and
# openapi-typescript typed it a string; the Python client sent its File's repr as the part's text)
_FILE = Schema(
    type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, content_media_type="text/csv", description="The CSV file."
)
# The body's media types an upload takes as CSV (what spreadsheets and browsers label a .csv file with)
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "text/tab-separated-values")


UPLOAD_DOC = (
    "Body: `text/csv`, or `multipart/form-data` with the file in `file`. Columns (headers case-insensitive, `,` `;` "
    "or tab detected (the one that finds the required columns), or named by a first line `sep=;` "
    '(or `"sep=;";;;`); lines ending in CRLF, LF or CR; UTF-8 with or '
    "without BOM, or UTF-16/32 with one, or the charset the body's Content-Type or the multipart file part's names, "
    "`text/csv; charset=windows-1252` (it wins over a UTF-8 BOM; a Latin-1 label, `iso-8859-1`, is read as "
    "windows-1252, as browsers read it); the form's `_charset_` field, its text fields' "
    "encoding, is not read): sku (required), gtin, name (required for a new SKU), brand, description, category (id, "
    "path `A > B`, or a name one category alone has), price (required; `3,49` or `3.49`), currency, quantity "
    "(required; an empty cell rejects its "
    "row), is_active. A file without a sku, price or quantity column: 400 naming it. A CSV import never deletes (a "
    "SKU missing from it keeps its listing; is_active `no` takes one off sale). An empty cell of another column "
    "keeps the stored value (text cannot be cleared), but for is_active: an empty cell or no column puts the listing "
    "on sale, as the write API's default true. Body types: text/csv, application/csv, text/plain, "
    "application/vnd.ms-excel, text/tab-separated-values (any other: 415 naming `content-type`). Up to 100 MB (413 "
    "past it). Answers 202 once the upload is stored whole; the worker maps it. An interrupted upload leaves an "
    "`aborted` batch with nothing applied. A charset no text encoding has (`charset=klingon`): 400 naming "
    "`content-type`, saying what is accepted, no batch created. A file that is not CSV text (an .xlsx workbook, UTF-16 "
    "without a BOM), or that cannot be read to its end (a quote never closed: a stray `\"` at a cell's start; a cell "
    "past 131,072 characters): 400 naming `file`, saying the line and column, nothing stored. The batch's `noted_rows` "
    "and `…/notes` show the rows applied with notes."
)


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


# A signed delivery's 401 challenge (RFC 9110 requires one on every 401): the body's signature, no key.
SIGNATURE_CHALLENGE = "Signature"
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
            description="The raw bytes the signature covers; for the custom webhook source: `{type, data}`"
            " (and `timestamp`, not read).",
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
