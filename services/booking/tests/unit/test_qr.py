"""QR images: valid PNG and SVG, the quiet zone, and the size the decision record promises
for a ticket barcode."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable
from xml.etree import ElementTree

import pytest

from marquee_booking.barcodes import BarcodeClaims, EventKeyPair, sign_barcode
from marquee_booking.qr import qr_png, qr_svg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NAMESPACE = "{http://www.w3.org/2000/svg}"

BARCODE = sign_barcode(
    BarcodeClaims(ticket_id=uuid.uuid4(), event_id=uuid.uuid4(), holder_id=uuid.uuid4(), version=0),
    EventKeyPair.generate().private_key,
)
# Version 8 is 49 modules wide; with 4 modules of quiet zone on each side, 57. At level L
# the same text would fit version 6 (41), at Q it needs version 9 (53): so 49 also pins M.
VERSION_8_MODULES = 49
IMAGE_MODULES = VERSION_8_MODULES + 2 * 4


def png_chunks(png: bytes) -> dict[bytes, bytes]:
    chunks: dict[bytes, bytes] = {}
    offset = len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        chunks[kind] = chunks.get(kind, b"") + png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return chunks


def png_dark_pixels(png: bytes) -> list[list[bool]]:
    """Rows of a 1-bit greyscale PNG, True where dark. Handles filters None and Up, the two
    segno writes; anything else fails the test rather than being misread."""
    chunks = png_chunks(png)
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (bit_depth, colour_type) == (1, 0)
    stride = (width + 7) // 8
    data = zlib.decompress(chunks[b"IDAT"])
    rows: list[list[bool]] = []
    previous = bytes(stride)
    for row_index in range(height):
        start = row_index * (stride + 1)
        filter_type, line = data[start], data[start + 1 : start + 1 + stride]
        assert filter_type in (0, 2)
        if filter_type == 2:
            line = bytes((up + byte) % 256 for up, byte in zip(previous, line, strict=True))
        previous = line
        rows.append([not (line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    return rows


def test_the_png_is_a_png_of_the_promised_size() -> None:
    png = qr_png(BARCODE)

    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png_chunks(png)[b"IHDR"][:8])
    assert (width, height) == (IMAGE_MODULES * 8, IMAGE_MODULES * 8)


def test_the_png_has_a_quiet_zone_of_four_modules() -> None:
    scale = 2
    pixels = png_dark_pixels(qr_png(BARCODE, scale=scale))
    quiet = 4 * scale

    for row in pixels[:quiet] + pixels[-quiet:]:
        assert not any(row)
    for row in pixels:
        assert not any(row[:quiet])
        assert not any(row[-quiet:])
    # The top-left finder pattern starts right after the quiet zone.
    assert pixels[quiet][quiet]


def test_the_scale_sets_pixels_per_module() -> None:
    png = qr_png(BARCODE, scale=3)

    width, _height = struct.unpack(">II", png_chunks(png)[b"IHDR"][:8])
    assert width == IMAGE_MODULES * 3


def test_the_svg_is_an_svg_document_with_a_title() -> None:
    svg = qr_svg(BARCODE)

    assert svg.startswith(b"<?xml")
    # Our own output, not untrusted input.
    root = ElementTree.fromstring(svg)  # noqa: S314
    assert root.tag == f"{SVG_NAMESPACE}svg"
    assert root.get("width") == str(IMAGE_MODULES * 8)
    title = root.find(f"{SVG_NAMESPACE}title")
    assert title is not None
    assert title.text == "Ticket barcode"


def test_the_images_are_deterministic() -> None:
    assert qr_png(BARCODE) == qr_png(BARCODE)
    assert qr_svg(BARCODE) == qr_svg(BARCODE)


def test_different_barcodes_make_different_images() -> None:
    other = BARCODE[:-1] + ("A" if BARCODE[-1] != "A" else "B")

    assert qr_png(other) != qr_png(BARCODE)


@pytest.mark.parametrize("render", [qr_png, qr_svg])
def test_a_scale_below_one_pixel_per_module_is_refused(render: Callable[..., bytes]) -> None:
    with pytest.raises(ValueError, match="at least one pixel"):
        render(BARCODE, scale=0)
