"""What an uploaded file really is, from its bytes, and an image's thumbnail.

Pillow decodes: only its PNG, JPEG, GIF and WebP readers are ever tried
(``formats=``), so no other decoder (PostScript, say) sees untrusted bytes.
An image is decoded in full (a damaged one is refused), limited to
``PIXELS_MAX`` pixels (a decompression bomb is a bad file), and its
thumbnail is re-encoded from the pixels alone: no metadata goes along.
Anything else, SVG included (it can carry script), is a plain file, served
as a download.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
GENERIC_TYPE = "application/octet-stream"
THUMB_MAX = 400  # pixels, the longer side
# 50 megapixels: a 10 MB image needs no more; decoding costs ~4 bytes a pixel.
PIXELS_MAX = 50_000_000


class BadImage(ValueError):
    """The bytes start like an image but cannot be decoded; the message says why."""


@dataclass(frozen=True, slots=True)
class Inspected:
    type: str
    image: bool
    width: int | None = None
    height: int | None = None
    thumb: bytes | None = None
    thumb_type: str | None = None


def inspect(path: Path) -> Inspected:
    """Sniff ``path``: an image (with its thumbnail) or a plain file.

    Raises:
        BadImage: a PNG, JPEG, GIF or WebP that is damaged or too large.
    """
    # Pillow warns above this (an error here), and raises above twice this.
    Image.MAX_IMAGE_PIXELS = PIXELS_MAX
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    try:
        with Image.open(path, formats=list(IMAGE_TYPES)) as image:
            kind = image.format or ""
            width, height = image.size
            if width * height > PIXELS_MAX:
                raise BadImage(
                    f"the image is {width}×{height} pixels; at most "
                    f"{PIXELS_MAX // 1_000_000} million are allowed"
                )
            if kind == "JPEG":
                # Decode at the smallest scale still larger than the thumbnail
                # (every byte is still read and checked).
                image.draft("RGB", (THUMB_MAX, THUMB_MAX))
            image.load()
            thumb, thumb_type = _thumbnail(image)
    except UnidentifiedImageError:
        return Inspected(GENERIC_TYPE, False)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(
            f"the image has more than {PIXELS_MAX // 1_000_000} million pixels"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage(f"the image cannot be read ({exc})") from None
    if kind not in IMAGE_TYPES:  # pragma: no cover - formats= allows no other
        return Inspected(GENERIC_TYPE, False)
    return Inspected(IMAGE_TYPES[kind], True, width, height, thumb, thumb_type)


def _thumbnail(image: Image.Image) -> tuple[bytes, str]:
    """At most THUMB_MAX pixels a side, upright, re-encoded without metadata:
    PNG where it has transparency, else JPEG."""
    frame = ImageOps.exif_transpose(image)
    transparent = frame.mode in ("RGBA", "LA", "PA") or (
        frame.mode == "P" and "transparency" in frame.info
    )
    frame = frame.convert("RGBA" if transparent else "RGB")
    frame.thumbnail((THUMB_MAX, THUMB_MAX), reducing_gap=2.0)
    out = io.BytesIO()
    if transparent:
        frame.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    frame.save(out, "JPEG", quality=82)
    return out.getvalue(), "image/jpeg"
