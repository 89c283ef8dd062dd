"""Images in and out: every kind of real file is read as sRGB, outputs are atomic and never clobbered."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import ImageError, OutputError
from painterly.io.images import check_output_path, load_image, pil_to_tensor, save_image, tensor_to_pil

from .conftest import make_image


def _icc_profile_swapping_red_and_green() -> bytes:
    """A minimal ICC v2 RGB matrix/TRC profile whose red and green primaries are sRGB's green and red."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", int(2.2 * 256)) + b"\0\0"
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)),  # sRGB's green primary (D50)
        (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),  # sRGB's red primary
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I", size) + b"none" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
        + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    picture = Image.new("RGB", (40, 20), "white")
    picture.paste((255, 0, 0), (0, 0, 10, 20))  # red stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = tmp_path / "rotated.jpg"
    picture.save(path, exif=exif, quality=95)
    loaded = load_image(path).rgb
    assert loaded.size == (20, 40)
    top_row = np.asarray(loaded)[2]
    assert top_row[10][0] > 200 and top_row[10][1] < 60  # the red stripe is now along the top


@pytest.mark.parametrize("mode", ["P", "L", "LA", "CMYK", "I;16", "I", "F", "1", "LAB", "YCbCr"])
def test_modes_are_converted_to_rgb(tmp_path: Path, mode: str) -> None:
    suffix = ".png" if mode in ("P", "L", "LA", "1", "I;16") else ".tif"
    path = tmp_path / f"image{suffix}"
    if mode == "I;16":
        array = (np.linspace(0, 65535, 40 * 32).reshape(32, 40)).astype(np.uint16)
        Image.fromarray(array).save(path)  # uint16 -> mode I;16
    else:
        make_image(path, mode=mode)
    loaded = load_image(path)
    assert loaded.rgb.mode == "RGB" and loaded.rgb.size == (40, 32)
    if mode == "I;16":  # the full 16-bit range maps to the full 8-bit range
        values = np.asarray(loaded.rgb)[..., 0]
        assert values.min() <= 1 and values.max() >= 254


#: CMYK swatches and the RGB they load as: with no ICC profile, (255 - ink) * (255 - black) / 255 per channel.
CMYK_SWATCHES = {
    (255, 0, 0, 0): (0, 255, 255),  # cyan
    (0, 255, 255, 0): (255, 0, 0),  # magenta and yellow: red
    (0, 128, 255, 0): (255, 127, 0),  # orange
    (0, 0, 0, 128): (127, 127, 127),  # half black
    (64, 0, 0, 64): (143, 191, 191),  # ink and black multiply
    (0, 0, 0, 0): (255, 255, 255),  # paper
}


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_cmyk_colours_load_as_the_rgb_they_stand_for(tmp_path: Path, suffix: str) -> None:
    """Not only the mode: a swapped or uninverted channel (Adobe CMYK JPEGs store inverted ink) shows in colour."""
    picture = Image.new("CMYK", (16 * len(CMYK_SWATCHES), 16))
    for index, cmyk in enumerate(CMYK_SWATCHES):
        picture.paste(cmyk, (16 * index, 0, 16 * index + 16, 16))  # 16 px swatches: whole JPEG blocks
    path = tmp_path / f"cmyk{suffix}"
    picture.save(path, **({"quality": 95} if suffix == ".jpg" else {}))
    with Image.open(path) as written:
        assert written.mode == "CMYK"
    rgb = np.asarray(load_image(path).rgb, dtype=int)
    for index, expected in enumerate(CMYK_SWATCHES.values()):
        swatch = rgb[4:12, 16 * index + 4 : 16 * index + 12].reshape(-1, 3)
        assert np.abs(swatch - np.array(expected)).max() <= 2, (list(CMYK_SWATCHES)[index], swatch[0], expected)


def _png_16bit_rgb(path: Path, samples: np.ndarray) -> Path:
    """Write a 48-bit RGB PNG by hand (Pillow cannot write one), rows of big-endian 16-bit samples."""
    height, width, _ = samples.shape
    rows = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16 bits per sample, truecolour
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


def test_sixteen_bit_grey_keeps_its_levels(tmp_path: Path) -> None:
    """16-bit samples are scaled by 255/65535 with rounding; a dark picture stays dark (not stretched to 0-255)."""
    levels = np.array([0, 128, 255, 1000, 32896, 65535], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(np.tile(levels, (4, 1))).save(path)
    with Image.open(path) as written:
        assert written.mode == "I;16"
    expected = np.array([0, 0, 1, 4, 128, 255])
    rgb = np.asarray(load_image(path).rgb)
    assert (rgb == expected[None, :, None]).all(), rgb[0]
    dark = tmp_path / "dark16.png"
    Image.fromarray(np.tile(np.array([0, 100, 255], dtype=np.uint16), (4, 1))).save(dark)
    assert np.asarray(load_image(dark).rgb).max() <= 1, "values up to 255 of 65535 are nearly black"
    tensor = pil_to_tensor(load_image(path).rgb)
    assert torch.allclose(tensor[0, :, 0], torch.tensor(expected / 255, dtype=torch.float32).expand(3, -1))


def test_sixteen_bit_rgb_keeps_its_colours(tmp_path: Path) -> None:
    samples = np.array([[[65535, 0, 32896], [4660, 51400, 257], [4863, 65535, 12000]]], dtype=np.uint16)
    path = _png_16bit_rgb(tmp_path / "rgb16.png", np.tile(samples, (3, 1, 1)))
    rgb = np.asarray(load_image(path).rgb, dtype=int)
    expected = samples[0] / 65535 * 255
    assert rgb.shape == (3, 3, 3)
    assert np.abs(rgb[1] - expected).max() < 1.0, (rgb[1], expected)  # each channel its own level, within one step


def test_rgba_is_composited_on_white_and_alpha_kept(tmp_path: Path) -> None:
    picture = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    picture.paste((0, 0, 255, 255), (0, 0, 10, 10))
    path = tmp_path / "alpha.png"
    picture.save(path)
    loaded = load_image(path)
    assert loaded.alpha is not None
    assert tuple(np.asarray(loaded.rgb)[5, 15]) == (255, 255, 255)  # transparent part shows white
    assert tuple(np.asarray(loaded.rgb)[5, 5]) == (0, 0, 255)
    assert any("transparency" in note for note in loaded.notes)


def test_embedded_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    path = tmp_path / "tagged.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path, icc_profile=_icc_profile_swapping_red_and_green())
    red, green, _ = np.asarray(load_image(path).rgb)[4, 4].astype(int)
    assert green > 200 and red < 80, "a pixel tagged as the profile's red is sRGB green"


def test_animated_gif_uses_first_frame_with_a_note(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 12), color) for color in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    loaded = load_image(path)
    assert np.asarray(loaded.rgb)[6, 6][0] > 200
    assert any("first" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_text("hello, I am text"), p)[1], "not an image"),
    ],
    ids=["missing", "directory", "empty", "text-renamed"],
)
def test_bad_files_give_one_sentence_naming_the_file(tmp_path: Path, setup, message: str) -> None:
    path = setup(tmp_path / "photo.jpg")
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files_are_reported(tmp_path: Path, suffix: str) -> None:
    whole = make_image(tmp_path / f"whole{suffix}", size=(64, 64))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(cut)


def test_pixel_limit_refuses_decompression_bombs(tmp_path: Path) -> None:
    path = make_image(tmp_path / "big.png", size=(100, 100))
    with pytest.raises(ImageError, match="more than 5,000 pixels"):
        load_image(path, max_pixels=5000)
    assert load_image(path, max_pixels=10_000).rgb.size == (100, 100)


def test_tensor_round_trip_is_exact() -> None:
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8))
    tensor = pil_to_tensor(picture)
    assert tensor.shape == (1, 3, 9, 7) and float(tensor.min()) >= 0 and float(tensor.max()) <= 1
    assert np.array_equal(np.asarray(tensor_to_pil(tensor)), np.asarray(picture))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_output_format_follows_extension(tmp_path: Path, suffix: str) -> None:
    path = save_image(Image.new("RGB", (8, 8), "red"), tmp_path / f"out{suffix}")
    expected = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".tif": "TIFF"}[suffix]
    with Image.open(path) as written:
        assert written.format == expected


def test_existing_output_is_never_clobbered_without_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    save_image(Image.new("RGB", (8, 8), "red"), path)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        save_image(Image.new("RGB", (8, 8), "blue"), path)
    assert path.read_bytes() == before
    save_image(Image.new("RGB", (8, 8), "blue"), path, overwrite=True)
    assert path.read_bytes() != before


def test_failed_write_leaves_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.png"
    save_image(Image.new("RGB", (8, 8), "red"), path)
    before = path.read_bytes()

    def crash(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_image(Image.new("RGB", (8, 8), "blue"), path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"], "no temporary file left behind"


def test_output_checks_happen_before_work(tmp_path: Path) -> None:
    source = make_image(tmp_path / "in.png")
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png")
    with pytest.raises(OutputError, match="one of the input images"):
        check_output_path(source, overwrite=True, inputs=(source,))
    with pytest.raises(OutputError, match="unknown extension"):
        check_output_path(tmp_path / "out.bmpx")
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path, overwrite=True)


def test_a_saved_picture_gets_the_mode_an_ordinary_write_would(tmp_path: Path) -> None:
    """Written through a private temporary file, the picture still ends readable as any new file is (0o666 less the
    umask), not 0o600: a user's results are not hidden from the group and others where their umask allows."""
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "out.png"
        save_image(tensor_to_pil(torch.rand(3, 8, 8)), out)
        ordinary = tmp_path / "ordinary.txt"
        ordinary.write_text("x")
        assert out.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
