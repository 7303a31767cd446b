"""Reading metadata from image files: PNG text chunks, EXIF UserComment, other tools' chunks."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.infotext.png_info import EXIF_IFD, USER_COMMENT, decode_user_comment, read_image_metadata

INFOTEXT = ("a fox, in snow\nNegative prompt: blurry\nSteps: 3, Sampler: Euler a, Schedule type: Automatic, "
            "CFG scale: 7, Seed: 5, Size: 16x16, Model: m, Version: Atelier 0.1.0")


def reopen(image: Image.Image, fmt: str, **save_args) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    buffer.seek(0)
    return Image.open(buffer)


def png_with(chunks: dict[str, str], *, itxt: tuple[str, ...] = (), compressed: tuple[str, ...] = ()) -> Image.Image:
    info = PngInfo()
    for key, value in chunks.items():
        if key in itxt:
            info.add_itxt(key, value)
        else:
            info.add_text(key, value, zip=key in compressed)
    return reopen(Image.new("RGB", (16, 16), "red"), "PNG", pnginfo=info)


def exif_with_comment(raw: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = raw
    return exif


def unicode_comment(text: str, byteorder: str = "be") -> bytes:
    """What piexif's ``UserComment.dump(text, encoding="unicode")`` (A1111's writer) produces."""
    return b"UNICODE\0" + text.encode(f"utf-16-{byteorder}")


def test_png_parameters_chunk_in_every_chunk_kind():
    for kwargs in ({}, {"itxt": ("parameters",)}, {"compressed": ("parameters",)}):
        meta = read_image_metadata(png_with({"parameters": INFOTEXT}, **kwargs))
        assert meta.parameters == INFOTEXT and meta.source == "parameters" and meta.format == "PNG"
        assert meta.items == {}


def test_comfyui_chunks_are_shown_raw_without_parameters():
    prompt = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}}})
    workflow = json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]})
    meta = read_image_metadata(png_with({"prompt": prompt, "workflow": workflow}))
    assert meta.parameters is None and meta.source is None
    assert meta.items == {"prompt": prompt, "workflow": workflow}


def test_invokeai_chunks_and_unicode_itxt():
    chunks = {"invokeai_metadata": json.dumps({"positive_prompt": "un renard é", "seed": 1}),
              "invokeai_graph": json.dumps({"id": "g", "nodes": {}}),
              "invokeai_workflow": json.dumps({"name": "w"})}
    meta = read_image_metadata(png_with(chunks, itxt=tuple(chunks)))
    assert meta.parameters is None and meta.items == chunks


def test_fooocus_a1111_scheme_keeps_the_scheme_chunk():
    meta = read_image_metadata(png_with({"parameters": INFOTEXT, "fooocus_scheme": "a1111"}))
    assert meta.parameters == INFOTEXT and meta.items == {"fooocus_scheme": "a1111"}


def test_fooocus_json_scheme_is_converted():
    data = {"prompt": "a lighthouse", "negative_prompt": "blurry", "steps": 30, "guidance_scale": 4,
            "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "123", "resolution": "(1152, 896)",
            "base_model": "juggernautXL_v8Rundiffusion", "base_model_hash": "aeb7e9e689",
            "version": "Fooocus v2.5.5"}
    meta = read_image_metadata(png_with({"parameters": json.dumps(data), "fooocus_scheme": "fooocus"}))
    assert meta.source == "Fooocus JSON"
    assert meta.parameters == ("a lighthouse\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M SDE, "
                               "Schedule type: Karras, CFG scale: 4, Seed: 123, Size: 1152x896, "
                               "Model hash: aeb7e9e689, Model: juggernautXL_v8Rundiffusion, Version: Fooocus v2.5.5")
    assert json.loads(meta.items["parameters"]) == data  # the raw JSON is still shown


def test_novelai_comment_is_converted():
    comment = json.dumps({"steps": 28, "sampler": "k_euler_ancestral", "seed": 42, "scale": 11, "uc": "lowres"})
    meta = read_image_metadata(png_with({"Software": "NovelAI", "Description": "1girl, solo",
                                         "Comment": comment, "Source": "Stable Diffusion 1D44365E"}))
    assert meta.source == "NovelAI"
    assert meta.parameters == ("1girl, solo\nNegative prompt: lowres\nSteps: 28, Sampler: Euler a, CFG scale: 11, "
                               "Seed: 42, Size: 16x16")
    assert meta.items["Software"] == "NovelAI" and meta.items["Comment"] == comment


def test_chunk_after_the_image_data_is_read():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    data = buffer.getvalue()
    body = b"tEXtparameters\0" + INFOTEXT.encode("latin-1", errors="replace")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    end = data.rindex(b"IEND") - 4
    meta = read_image_metadata(Image.open(io.BytesIO(data[:end] + chunk + data[end:])))
    assert meta.parameters == INFOTEXT


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_exif_user_comment_from_jpeg_and_webp(fmt):
    text = INFOTEXT + ", Note: \"héllo 猫\""
    image = reopen(Image.new("RGB", (16, 16), "blue"), fmt, exif=exif_with_comment(unicode_comment(text)))
    meta = read_image_metadata(image)
    assert meta.parameters == text and meta.source == "EXIF UserComment" and meta.format == fmt


def test_png_parameters_win_over_exif_comment():
    image = Image.new("RGB", (8, 8))
    info = PngInfo()
    info.add_text("parameters", INFOTEXT)
    # Pillow's PNG writer skips an Exif object whose main IFD is empty; bytes are always written.
    png = reopen(image, "PNG", pnginfo=info, exif=exif_with_comment(unicode_comment("other")).tobytes())
    meta = read_image_metadata(png)
    assert meta.parameters == INFOTEXT and meta.items.get("exif comment") == "other"


@pytest.mark.parametrize("raw, expected", [
    (unicode_comment("a, b: c"), "a, b: c"),
    (unicode_comment("a, b: c", "le"), "a, b: c"),  # little-endian writers (no BOM)
    (b"UNICODE\0\xff\xfe" + "é".encode("utf-16-le"), "é"),
    (b"ASCII\0\0\0Steps: 20", "Steps: 20"),
    (b"\0" * 8 + "ünï".encode(), "ünï"),
    (b"JIS\0\0\0\0\0" + "猫".encode("shift_jis"), "猫"),
    (b"no prefix at all", "no prefix at all"),
    (b"UNICODE\0" + "x".encode("utf-16-be") + b"\0\0", "x"),
    ("already text", "already text"),
    (b"ASCII\0\0\0", None),
    (None, None),
])
def test_decode_user_comment(raw, expected):
    assert decode_user_comment(raw) == expected


def test_jpeg_comment_and_exif_software_are_items():
    exif = Image.Exif()
    exif[0x0131] = "Fooocus v2.5.5"
    image = reopen(Image.new("RGB", (8, 8)), "JPEG", exif=exif, comment=b"made by hand")
    meta = read_image_metadata(image)
    assert meta.parameters is None
    assert meta.items["comment"] == "made by hand" and meta.items["EXIF Software"] == "Fooocus v2.5.5"
    assert "exif" not in meta.items


def test_image_without_metadata():
    meta = read_image_metadata(reopen(Image.new("RGB", (8, 8)), "PNG"))
    assert meta.parameters is None and meta.items == {} and meta.format == "PNG"
