"""QR images of ticket barcodes for the ticket page, the PDF and the email.

Error correction level M (15% of the code may be lost) survives a creased printout or a
cracked phone screen; a ticket barcode is then version 8 (49 by 49 modules), see
``docs/decisions/0009-ticket-barcodes.md``. The quiet zone of 4 modules is what the QR
specification asks for: door scanners miss codes printed tight against other ink.
Output is deterministic, so an image can be cached by its barcode.
"""

from __future__ import annotations

import io

import segno

QUIET_ZONE_MODULES = 4


def qr_svg(text: str, *, scale: int = 8, title: str = "Ticket barcode") -> bytes:
    """An SVG document (with XML declaration) ``scale`` pixels per module; ``title`` is
    what screen readers announce."""
    image = io.BytesIO()
    _symbol(text).save(
        image, kind="svg", scale=_checked(scale), border=QUIET_ZONE_MODULES, title=title
    )
    return image.getvalue()


def qr_png(text: str, *, scale: int = 8) -> bytes:
    """A black and white PNG, ``scale`` pixels per module."""
    image = io.BytesIO()
    _symbol(text).save(image, kind="png", scale=_checked(scale), border=QUIET_ZONE_MODULES)
    return image.getvalue()


def _symbol(text: str) -> segno.QRCode:
    # No Micro QR (many scanners do not read it), and exactly level M: segno would otherwise
    # raise the level when it fits, making the code's robustness depend on its content.
    return segno.make(text, error="m", micro=False, boost_error=False)


def _checked(scale: int) -> int:
    if scale < 1:
        raise ValueError(f"a QR image needs at least one pixel per module, not {scale}")
    return scale
