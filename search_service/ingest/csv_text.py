"""A CSV file's bytes as text: a workbook refused, a byte-order mark read (UTF-8, UTF-16/32), or the charset its
upload or `--charset` names."""

from __future__ import annotations

import codecs


class CsvError(ValueError):
    """The file cannot be imported at all; `column` names the missing column when that is why."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


BOM = b"\xef\xbb\xbf"
# Checked in this order: a UTF-32 LE mark begins with the UTF-16 LE one.
WIDE_BOMS = (((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"), "utf-32"), ((b"\xff\xfe", b"\xfe\xff"), "utf-16"))
WORKBOOKS = (
    (b"PK\x03\x04", "a zip archive (an .xlsx or .ods workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Excel workbook (.xls)"),
)
SAVE_AS = "save it as CSV (UTF-8) and import that"


def decoded(data: bytes, charset: str | None = None) -> str:
    """The file's text. UTF-8 keeps the bytes that are not UTF-8 as surrogates (their rows are rejected); a file
    with a UTF-16/32 mark must decode whole; so must one whose upload declared another charset (Excel's "CSV"
    on Windows writes windows-1252: every row with an umlaut or € was rejected as not UTF-8), with a UTF-8 mark or
    without."""
    for magic, what in WORKBOOKS:
        if data.startswith(magic):
            raise CsvError(f"the file is {what}, not CSV: {SAVE_AS}")
    # A declared charset wins over a UTF-8 mark (its bytes dropped): a tool that re-saved the file kept the mark
    if charset is not None and not _is_utf8(charset) and not any(data.startswith(m) for m, _ in WIDE_BOMS):
        return _declared(data.removeprefix(BOM), charset)
    if data.startswith(BOM):
        return data[len(BOM) :].decode("utf-8", "surrogateescape")
    for marks, codec in WIDE_BOMS:
        if data.startswith(marks):
            try:
                return data.decode(codec)  # the codec reads the mark's byte order and drops it
            except UnicodeDecodeError as exc:
                name = codec.upper()
                raise CsvError(
                    f"the file starts with a {name} byte-order mark but is not {name} ({exc.reason} at byte "
                    f"{exc.start}): {SAVE_AS}"
                ) from None
    return data.decode("utf-8", "surrogateescape")


def _is_utf8(charset: str) -> bool:
    return charset.strip().strip('"').lower().replace("_", "-") in ("utf-8", "utf8", "us-ascii", "ascii")


# What a CSV's charset must read as ASCII does: its backslashes, `+`, `.` and `xn--` kept
_ASCII_SAMPLE = b"sku;name,price\t+-\\x41\\u0041 Ab-1.5.xn--ls8h\r\n"


def check_charset(charset: str | None) -> None:
    """A CsvError naming `content-type` unless `charset` is None or a text encoding: an upload checks it before
    any batch is opened (an unknown one left an `aborted` batch behind)."""
    if charset is None or _is_utf8(charset):
        return
    name = charset.strip().strip('"')
    try:
        wide = codecs.lookup(name).name.startswith(("utf-16", "utf-32"))  # their ASCII is two or four bytes
        if not wide and _ASCII_SAMPLE.decode(name) != _ASCII_SAMPLE.decode("ascii"):
            raise LookupError(name)  # Python's own codecs: unicode_escape, utf-7, idna, punycode rewrite ASCII
    except (LookupError, ValueError, UnicodeError):  # ValueError: a NUL in the name; `undefined` decodes nothing
        raise _unknown_charset(name) from None


def _unknown_charset(name: str) -> CsvError:
    shown = name if len(name) <= 64 else name[:64] + "..."
    return CsvError(
        f"the charset {shown!r} is unknown (or no text encoding a CSV is written in): send the file as UTF-8 (no "
        "charset, or charset=utf-8), or name a text encoding such as windows-1252, iso-8859-15 or utf-16",
        "content-type",
    )


def _windows_1252_unassigned(exc: UnicodeError) -> tuple[str, int]:
    """Windows-1252's five unassigned bytes (0x81 0x8D 0x8F 0x90 0x9D) as WHATWG reads them: as ISO-8859-1."""
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("plinqy-windows-1252", _windows_1252_unassigned)


def _declared(data: bytes, charset: str) -> str:
    name = charset.strip().strip('"')
    try:
        # A Latin-1 label read as windows-1252, as WHATWG and every browser read it: a Windows export called
        # "Latin-1" has its € “ ” – at 0x80-0x9F, which ISO-8859-1 stored as invisible C1 controls, no note said
        if codecs.lookup(name).name == "iso8859-1":
            return data.decode("cp1252", "plinqy-windows-1252")
        return data.decode(name)
    except LookupError:
        raise _unknown_charset(name) from None
    except UnicodeError as exc:  # UnicodeDecodeError, or a codec's own (punycode raises a bare UnicodeError)
        where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        raise CsvError(f"the file is not {name} ({exc}{where}): {SAVE_AS}", "content-type") from None
