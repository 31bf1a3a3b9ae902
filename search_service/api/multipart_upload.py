"""A CSV upload sent as a browser form: the file part of a multipart/form-data body."""

from __future__ import annotations

import email.parser
import email.policy

from search_service.api.params import BadParameter

# Allowed for beyond the upload limit on a form's whole body (boundaries, part headers, a few small fields): the
# limit is the file's, as for a text/csv body (a file 1 byte under it was refused as a form).
ENVELOPE_BYTES = 64 * 1024

MAX_PARTS = 100  # a form with the file and a few fields; 150,000 empty parts cost the parser 8 s a MB


def multipart_file(body: bytes, content_type: str) -> tuple[bytes, str | None, str | None]:
    """The part named `file` of a multipart/form-data body, or its only file part (a form of several files that
    names none `file` is refused: the first of them may be a logo): its bytes, file name and the charset its own
    Content-Type names (`text/csv; charset=windows-1252`: a browser form's only way to say it)."""
    boundary = next((p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";")
                     if p.strip().lower().startswith("boundary=")), "")  # fmt: skip
    if boundary and body.count(b"--" + boundary.encode("latin-1", "replace")) > MAX_PARTS + 1:
        raise BadParameter("file", f"the multipart body has more than {MAX_PARTS} parts: send the CSV as `file`")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts = list(message.iter_parts()) if message.is_multipart() else []
    named = [p for p in parts if p.get_param("name", header="content-disposition") == "file"]
    files = named or [p for p in parts if p.get_filename()]
    if not files:
        raise BadParameter("file", "the multipart body has no file part (send the CSV as the field `file`)")
    if len(files) > 1:
        which = "fields named `file`" if named else "files, none of them named `file`"
        raise BadParameter("file", f"the multipart body has {len(files)} {which}: send the one CSV as the field `file`")
    payload = files[0].get_payload(decode=True)
    charset = files[0].get_param("charset")
    return (payload if isinstance(payload, bytes) else b""), files[0].get_filename(), _named(charset)


def _named(charset: object) -> str | None:
    return charset.strip() or None if isinstance(charset, str) else None
