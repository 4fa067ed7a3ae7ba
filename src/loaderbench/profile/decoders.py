"""Image decoders the profile can compare: PIL, and a libjpeg-turbo binding from PyPI when one is installed.

``turbo`` means ``simplejpeg`` (wheels bundle libjpeg-turbo) or else ``PyTurboJPEG`` (needs the system's
``libturbojpeg``). Both read JPEG only. A decoder that cannot run here is reported with its reason
(:func:`decoder_status`), never a crash. Every decoder returns an RGB ``PIL.Image`` so the transforms that follow are
the same for all of them.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

DECODERS = ("pil", "turbo")
FORMATS = ("jpeg", "png")

Decode = Callable[[bytes], Image.Image]


class DecoderUnavailable(RuntimeError):
    """The decoder cannot run here; the message says why and how to get it."""


def decode_pil(data: bytes) -> Image.Image:
    """Decode with Pillow (``Image.open`` + ``load``), as RGB."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image if image.mode == "RGB" else image.convert("RGB")


def _simplejpeg() -> Decode:
    import simplejpeg  # noqa: PLC0415 - optional

    def decode(data: bytes) -> Image.Image:
        return Image.fromarray(simplejpeg.decode_jpeg(data, colorspace="RGB"))

    return decode


def _pyturbojpeg() -> Decode:
    from turbojpeg import TJPF_RGB, TurboJPEG  # noqa: PLC0415 - optional

    jpeg = TurboJPEG()  # raises when the system's libturbojpeg is missing

    def decode(data: bytes) -> Image.Image:
        return Image.fromarray(np.ascontiguousarray(jpeg.decode(data, pixel_format=TJPF_RGB)))

    return decode


def make_decoder(name: str, image_format: str) -> Decode:
    """The decode function called ``name`` for images in ``image_format``; raises :class:`DecoderUnavailable`."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r} (choose from {', '.join(DECODERS)})")
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format {image_format!r} (choose from {', '.join(FORMATS)})")
    if name == "pil":
        return decode_pil
    if image_format != "jpeg":
        raise DecoderUnavailable(f"the turbo decoders read JPEG only; these images are {image_format.upper()}")
    reasons = []
    for label, factory in (("simplejpeg", _simplejpeg), ("PyTurboJPEG", _pyturbojpeg)):
        try:
            return factory()
        except Exception as exc:  # noqa: BLE001 - ImportError, or OSError/RuntimeError for a missing system library
            reasons.append(f"{label}: {type(exc).__name__}: {exc}")
    raise DecoderUnavailable("no libjpeg-turbo binding is usable (pip install simplejpeg): " + "; ".join(reasons))


def decoder_library(name: str) -> str:
    """Which library does the decoding for ``name`` here (``Pillow x.y``, ``simplejpeg x.y``), for the record."""
    from importlib import metadata  # noqa: PLC0415

    candidates = ("pillow",) if name == "pil" else ("simplejpeg", "PyTurboJPEG")
    for dist in candidates:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def decoder_status(name: str, image_format: str) -> str | None:
    """``None`` when decoder ``name`` can decode ``image_format`` here, else the reason it cannot."""
    try:
        make_decoder(name, image_format)
    except DecoderUnavailable as exc:
        return str(exc)
    return None
