"""Reading and writing images correctly.

Everything the engine sees is an sRGB image; this module is the only place that
deals with what real files contain: EXIF rotation, palettes, grayscale, alpha,
CMYK, 16-bit samples, embedded ICC profiles, animations, broken files, and
decompression bombs.  Outputs are written atomically and never clobber an
existing file unless asked to.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo
from torch import Tensor

from painterly.errors import ImageError, OutputError
from painterly.io.atomic import atomic_write_with, check_writable

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "LoadedImage",
    "check_output_path",
    "load_image",
    "normalize_image",
    "pil_to_tensor",
    "resize_long_side",
    "save_image",
    "tensor_to_pil",
]

#: Inputs above this many pixels are refused (a decompression bomb guard); configurable.
DEFAULT_MAX_PIXELS = 100_000_000

#: Output format by file extension.
OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_SRGB = ImageCms.createProfile("sRGB")


@dataclass
class LoadedImage:
    """An sRGB RGB image plus the alpha channel it came with (None if opaque)."""

    rgb: Image.Image
    alpha: Image.Image | None
    path: Path | None
    notes: list[str]


def _to_srgb(image: Image.Image, path: Path, notes: list[str]) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode not in ("RGB", "RGBA", "CMYK", "L"):
            return image
        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        notes.append(f"{path.name}: embedded ICC profile unreadable, assumed sRGB")
        return image
    assert converted is not None
    converted.info.pop("icc_profile", None)
    return converted


def _sixteen_bit_to_8(image: Image.Image) -> Image.Image:
    """Scale 16-bit / 32-bit integer samples to 8 bits using the full range of the type."""
    array = np.asarray(image)
    peak = 65535.0 if array.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
    return Image.fromarray(np.clip(array.astype(np.float64) / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def load_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, role: str = "image"
) -> LoadedImage:
    """Open ``path`` as sRGB with a one-sentence :class:`ImageError` for anything unusable.

    Alpha is returned separately: the RGB part is composited over white (what a
    viewer shows), and callers may put the alpha back on the result.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{role} {path}: file not found")
    if path.is_dir():
        raise ImageError(f"{role} {path}: is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{role} {path}: file is empty (0 bytes)")
    notes: list[str] = []
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            if image.width * image.height > max_pixels:
                raise Image.DecompressionBombError("too many pixels")
            if getattr(image, "is_animated", False):
                frames = getattr(image, "n_frames", "several")
                notes.append(f"{path.name}: animated image with {frames} frames, using the first")
                image.seek(0)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{role} {path}: image has more than {max_pixels:,} pixels (limit set by --max-pixels); "
            "refusing it as a possible decompression bomb"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{role} {path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{role} {path}: image data is damaged or truncated ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit

    if min(image.size) < 1:
        raise ImageError(f"{role} {path}: image has no pixels")
    return normalize_image(image, role=role, name=str(path), notes=notes)


def normalize_image(
    image: Image.Image, *, role: str = "image", name: str = "image", notes: list[str] | None = None
) -> LoadedImage:
    """Any opened Pillow image (a file's, or one passed to the API) -> sRGB RGB plus its alpha.

    Applies EXIF rotation, palettes, high bit depths, ICC profiles; transparency is
    composited onto white (what a viewer shows) and the alpha returned separately.
    """
    notes = [] if notes is None else notes
    path = Path(name)
    image = ImageOps.exif_transpose(image) or image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = _sixteen_bit_to_8(image)
        notes.append(f"{path.name}: high bit-depth samples reduced to 8 bits")
    if image.mode in ("PA", "LA", "RGBa"):
        image = image.convert("RGBA")
    image = _to_srgb(image, path, notes)
    if image.mode == "F":  # float TIFFs: assume [0, 1] when they fit, else 0-255
        samples = np.asarray(image)
        scale = 255.0 if samples.max(initial=0) <= 1 else 1.0
        image = Image.fromarray(np.clip(samples * scale, 0, 255).astype(np.uint8))
    alpha = None
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        if alpha.getextrema() == (255, 255):
            alpha = None
        else:
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
            notes.append(f"{path.name}: transparency composited onto white")
    try:
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"{role} {name}: unsupported image mode {image.mode} ({exc})") from None
    return LoadedImage(rgb=rgb, alpha=alpha, path=path if name != "image" else None, notes=notes)


def resize_long_side(image: Image.Image, size: int) -> Image.Image:
    """Resize so the longer side is ``size`` pixels (aspect kept, each side at least 1)."""
    scale = size / max(image.size)
    width, height = (max(1, round(side * scale)) for side in image.size)
    if (width, height) == image.size:
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def pil_to_tensor(image: Image.Image) -> Tensor:
    """PIL RGB -> float32 tensor 1 x 3 x H x W in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(tensor: Tensor) -> Image.Image:
    """1 x 3 x H x W (or 3 x H x W) tensor in [0, 1] -> PIL RGB, clamped and rounded."""
    if tensor.ndim == 4:
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"output {path}: unknown extension {path.suffix or '(none)'!r}; use one of {', '.join(OUTPUT_FORMATS)}"
        )
    return fmt


def check_output_path(path: Path | str, *, overwrite: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """Fail before any computation if the result could not be written to ``path``."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output {path}: is a directory; give a file name such as {path / 'result.png'}")
    output_format(path)
    for source in inputs:
        if path.resolve() == source.resolve():
            raise OutputError(f"output {path}: is one of the input images; choose another output name")
    check_writable(path, "output")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path}: file exists; pass --overwrite to replace it")
    return path


#: Where a picture keeps its provenance (painterly.provenance): the key of a PNG text chunk and of ``Image.info``;
#: JPEG, WebP and TIFF keep the same text as EXIF ImageDescription (tag 0x010E).
PROVENANCE_KEY = "painterly"
EXIF_IMAGE_DESCRIPTION = 0x010E


def save_image(image: Image.Image, path: Path | str, *, overwrite: bool = False, quality: int = 95) -> Path:
    """Write ``image`` atomically in the format its extension names, with its provenance if it carries one.

    JPEG has no alpha, so an RGBA image is flattened onto white for JPEG.
    """
    path = Path(path)
    fmt = output_format(path)
    if path.exists() and not overwrite:
        raise OutputError(f"output {path}: file exists; pass --overwrite to replace it")
    if fmt == "JPEG" and image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image).convert("RGB")
    provenance = image.info.get(PROVENANCE_KEY)
    options: dict[str, object] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "TIFF":
        options["compression"] = "tiff_deflate"
    if isinstance(provenance, str) and fmt == "PNG":
        text = PngInfo()
        text.add_text(PROVENANCE_KEY, provenance, zip=True)
        options["pnginfo"] = text
    elif isinstance(provenance, str):
        exif = Image.Exif()
        exif[EXIF_IMAGE_DESCRIPTION] = provenance  # JSON with ensure_ascii: the ASCII text EXIF asks for
        options["exif"] = exif.tobytes()
    atomic_write_with(path, lambda handle: image.save(handle, format=fmt, **options))
    return path
