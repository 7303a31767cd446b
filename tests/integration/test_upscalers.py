"""Upscalers through the real path: model files in models/ESRGAN, spandrel, tiling, the Hub."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import UnsafeFormatError, ValidationError
from pipelines.models.store import ModelStore
from pipelines.upscalers.records import UpscalerKind
from pipelines.upscalers.registry import UpscalerRegistry
from tests.support.apps import make_settings
from tests.support.hub_server import LocalHub
from tests.support.tiny_upscalers import save_rrdbnet


def gradient(width: int = 24, height: int = 16) -> Image.Image:
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                          np.full((height, width, 1), 128.0)], axis=2)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def upscalers_for(settings) -> UpscalerRegistry:
    return UpscalerRegistry(settings, ModelStore(settings))


@pytest.fixture
def upscalers(tmp_path) -> UpscalerRegistry:
    esrgan = tmp_path / "models" / "ESRGAN"
    save_rrdbnet(esrgan / "4x-tiny.safetensors", scale=4, seed=1)
    save_rrdbnet(esrgan / "tiny-2x.safetensors", scale=2, seed=2)
    return upscalers_for(make_settings(tmp_path, upscale_tile=16, upscale_tile_overlap=4))


def test_model_files_are_listed_with_builtins_and_scale_from_the_name(upscalers):
    assert upscalers.names() == ["None", "Lanczos", "Nearest", "4x-tiny", "tiny-2x"]
    assert upscalers.default_name() == "4x-tiny"
    items = {item["name"]: item for item in upscalers.items()}
    assert set(items["4x-tiny"]) == {"name", "model_name", "model_path", "model_url", "scale"}
    assert items["4x-tiny"]["scale"] == 4 and items["tiny-2x"]["scale"] == 2
    assert items["4x-tiny"]["model_path"].endswith("models/ESRGAN/4x-tiny.safetensors")
    assert items["None"]["model_path"] is None and items["4x-tiny"]["model_url"] is None


def test_spandrel_loads_the_tiny_rrdbnet_as_esrgan(upscalers):
    for name, scale in (("4x-tiny", 4), ("tiny-2x", 2)):
        descriptor = upscalers.load(upscalers.find(name))
        assert descriptor.architecture.id == "ESRGAN" and descriptor.scale == scale
        assert descriptor.device == upscalers.store.device and descriptor.dtype == upscalers.store.dtype


def test_scale_comes_from_the_model_once_loaded(tmp_path):
    save_rrdbnet(tmp_path / "models" / "ESRGAN" / "mystery.safetensors", scale=2)
    upscalers = upscalers_for(make_settings(tmp_path))
    assert upscalers.find("mystery").scale == 4  # no hint in the name: the usual 4x guess
    upscalers.upscale(gradient(8, 8), 2, "mystery")
    assert upscalers.find("mystery").scale == 2 and upscalers.refresh() and upscalers.find("mystery").scale == 2


def test_4x_model_output_size_and_tiles_reported(upscalers):
    tiles = []
    out = upscalers.upscale(gradient(24, 16), 4, "4x-tiny", on_tile=lambda d, t: tiles.append((d, t)))
    assert out.size == (96, 64) and out.mode == "RGB"
    assert tiles[-1][0] == tiles[-1][1] == 2  # 24x16 in 16px tiles: two tiles
    assert np.asarray(out).std() > 0


@pytest.mark.parametrize(("scale", "size", "passes"), [(2, (48, 32), 1), (3, (72, 48), 1), (1.5, (36, 24), 1)])
def test_non_native_scales_end_at_the_exact_size(upscalers, scale, size, passes):
    calls = []
    out = upscalers.upscale(gradient(24, 16), scale, "4x-tiny", on_tile=lambda d, t: calls.append(d))
    assert out.size == size
    assert upscalers.passes_needed("4x-tiny", scale) == passes


def test_2x_model_runs_twice_for_4x(upscalers):
    totals = []
    out = upscalers.upscale(gradient(12, 8), 4, "tiny-2x", on_tile=lambda d, t: totals.append(d == 1))
    assert out.size == (48, 32)
    assert sum(totals) == 2  # two passes, each starting again at tile 1
    assert upscalers.passes_needed("tiny-2x", 4) == 2


def test_lanczos_and_nearest_are_pillow_resizes(upscalers):
    image = gradient(10, 6)
    assert np.array_equal(np.asarray(upscalers.upscale(image, 2.5, "Nearest")),
                          np.asarray(image.resize((25, 15), Image.Resampling.NEAREST)))
    assert np.array_equal(np.asarray(upscalers.upscale(image, 2, "Lanczos")),
                          np.asarray(image.resize((20, 12), Image.Resampling.LANCZOS)))
    assert upscalers.upscale(image, 1, "None") is image


def test_unknown_upscaler_names_the_field_and_lists_choices(upscalers):
    with pytest.raises(ValidationError) as err:
        upscalers.upscale(gradient(), 2, "R-ESRGAN 9x")
    assert err.value.field == "upscaler" and "'Lanczos'" in err.value.message and "4x-tiny" in err.value.message
    with pytest.raises(ValidationError, match="scale"):
        upscalers.upscale(gradient(), 0, "Lanczos")


def test_models_are_kept_in_the_store_cache(upscalers):
    first = upscalers.load(upscalers.find("4x-tiny"))
    assert upscalers.load(upscalers.find("4x-tiny")) is first
    upscalers.load(upscalers.find("tiny-2x"))
    assert sorted(upscalers.loaded_names()) == ["4x-tiny", "tiny-2x"]
    assert upscalers.store.unload() and upscalers.loaded_names() == []


def test_pickled_files_need_allow_pickle(tmp_path):
    save_rrdbnet(tmp_path / "models" / "ESRGAN" / "old-4x.pth", scale=4)
    refused = upscalers_for(make_settings(tmp_path))
    assert "old-4x" not in refused.names()
    with pytest.raises(UnsafeFormatError, match="--allow-pickle"):
        refused.upscale(gradient(8, 8), 4, "old-4x")
    allowed = upscalers_for(make_settings(tmp_path, allow_pickle=True))
    assert "old-4x" in allowed.names()
    assert allowed.upscale(gradient(8, 8), 4, "old-4x").size == (32, 32)
    assert allowed.load(allowed.find("old-4x")).architecture.id == "ESRGAN"


def test_hub_download_into_models_esrgan_with_byte_progress(tmp_path):
    repo = tmp_path / "repo"
    save_rrdbnet(repo / "4x-hub.safetensors", scale=4, seed=3)
    (repo / "README.md").write_text("tiny test upscaler\n")
    data = tmp_path / "data"
    with LocalHub() as hub:
        hub.add_repo("atelier-test/upscalers", repo)
        upscalers = upscalers_for(make_settings(data, hub_offline=False, hf_endpoint=hub.endpoint))
        updates = []
        record = upscalers.download("atelier-test/upscalers", "4x-hub.safetensors", updates.append)
        with pytest.raises(ValidationError, match="no file"):
            upscalers.download("atelier-test/upscalers", "missing.safetensors")
    assert record.kind is UpscalerKind.SPANDREL and record.path == data / "models" / "ESRGAN" / "4x-hub.safetensors"
    size = (repo / "4x-hub.safetensors").stat().st_size
    assert updates and updates[-1].unit == "bytes" and updates[-1].step == updates[-1].total == size
    assert "4x-hub" in upscalers.names()
    assert upscalers.upscale(gradient(8, 8), 4, "4x-hub").size == (32, 32)


# ---- the extras mode through the engine ---------------------------------------------------------------

@pytest.fixture
def ctx(tmp_path):
    from pipelines.context import AppContext

    save_rrdbnet(tmp_path / "models" / "ESRGAN" / "4x-tiny.safetensors", scale=4, seed=1)
    return AppContext.build(make_settings(tmp_path, upscale_tile=16, upscale_tile_overlap=4))


def with_parameters(image: Image.Image, text: str) -> Image.Image:
    from io import BytesIO

    from pipelines.outputs import png_info

    buffer = BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(text))
    return Image.open(BytesIO(buffer.getvalue()))


def test_extras_scale_by_keeps_the_source_infotext_and_saves(ctx):
    from pipelines.infotext.codec import parse_infotext
    from pipelines.outputs import read_infotext
    from pipelines.requests import ExtrasRequest

    source = with_parameters(gradient(24, 16), "a fox\nSteps: 20, Sampler: Euler, Seed: 5, Size: 24x16")
    updates = []
    result = ctx.engine.generate(ExtrasRequest(images=(source,), upscaler_1="4x-tiny", upscaling_resize=2),
                                 on_progress=updates.append)
    (image,) = result.images
    assert image.image.size == (48, 32) and image.seed == -1
    assert image.infotext == ("a fox\nSteps: 20, Sampler: Euler, Seed: 5, Size: 24x16, "
                              "Postprocess upscale by: 2, Postprocess upscaler: 4x-tiny")
    assert image.path.parent.parent.name == "extras-images" and image.path.name == "00000.png"
    assert read_infotext(image.path) == image.infotext
    assert parse_infotext(image.infotext)["Postprocess upscaler"] == "4x-tiny"
    tiles = [u for u in updates if u.unit == "tiles"]
    assert tiles and tiles[-1].step == tiles[-1].total and tiles[-1].job == "extras"


def test_extras_two_upscalers_blended(ctx):
    from pipelines.requests import ExtrasRequest

    source = gradient(12, 8)
    up = ctx.upscalers
    first, second = up.upscale(source, 2, "4x-tiny"), up.upscale(source, 2, "Nearest")
    request = ExtrasRequest(images=(source,), upscaler_1="4x-tiny", upscaler_2="Nearest",
                            extras_upscaler_2_visibility=0.25, save_images=False)
    (image,) = ctx.engine.generate(request).images
    expected = Image.blend(first, second, 0.25)
    assert np.abs(np.asarray(image.image, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
    assert not np.array_equal(np.asarray(image.image), np.asarray(first))
    assert image.infotext == ("Postprocess upscale by: 2, Postprocess upscaler: 4x-tiny, "
                              "Postprocess upscaler 2: Nearest, Postprocess upscaler 2 visibility: 0.25")
    assert image.path is None


@pytest.mark.parametrize(("crop", "size"), [(True, (40, 40)), (False, (60, 40))])
def test_extras_scale_to_with_and_without_crop(ctx, crop, size):
    from pipelines.requests import ExtrasRequest

    request = ExtrasRequest(images=(gradient(12, 8), gradient(6, 6)), resize_mode=1, upscaling_resize_w=40,
                            upscaling_resize_h=40, upscaling_crop=crop, upscaler_1="Lanczos", save_images=False)
    result = ctx.engine.generate(request)
    assert result.images[0].image.size == size and result.images[1].image.size == (40, 40)
    expected = "Postprocess upscale to: 40x40, " + ("Postprocess crop to: 40x40, " if crop else "")
    assert result.images[0].infotext == expected + "Postprocess upscaler: Lanczos"


def test_extras_bad_fields_are_named(ctx):
    from pipelines.requests import ExtrasRequest

    image = gradient()
    cases = [
        (ExtrasRequest(images=()), "images"),
        (ExtrasRequest(images=(image,), upscaler_1="R-ESRGAN 4x+"), "upscaler_1"),
        (ExtrasRequest(images=(image,), upscaler_2="nope"), "upscaler_2"),
        (ExtrasRequest(images=(image,), upscaling_resize=0), "upscaling_resize"),
        (ExtrasRequest(images=(image,), upscaling_resize=5000), "upscaling_resize"),
        (ExtrasRequest(images=(image,), resize_mode=2), "resize_mode"),
        (ExtrasRequest(images=(image,), resize_mode=1, upscaling_resize_w=0), "upscaling_resize_w"),
        (ExtrasRequest(images=(image,), extras_upscaler_2_visibility=1.5), "extras_upscaler_2_visibility"),
        (ExtrasRequest(images=("not an image",)), "images.0"),
    ]
    for request, field in cases:
        with pytest.raises(ValidationError) as err:
            ctx.engine.generate(request)
        assert err.value.field == field, (request, err.value)
    with pytest.raises(ValidationError) as err:
        ctx.engine.generate(ExtrasRequest(images=(image,), upscaler_1="R-ESRGAN 4x+"))
    assert "'Lanczos'" in err.value.message and "'4x-tiny'" in err.value.message


def test_extras_interrupt_between_tiles_keeps_finished_images(ctx):
    from pipelines.requests import ExtrasRequest

    def interrupt_on_second_image(update):
        if ctx.engine.state.job_no == 1 and update.unit == "tiles":
            ctx.engine.interrupt()

    request = ExtrasRequest(images=(gradient(24, 16), gradient(40, 40), gradient(8, 8)), upscaler_1="4x-tiny",
                            save_images=False)
    result = ctx.engine.generate(request, on_progress=interrupt_on_second_image)
    assert result.interrupted and len(result.images) == 1 and result.images[0].image.size == (48, 32)


def test_extras_upscaler_none_leaves_the_image_as_it_is(ctx):
    from pipelines.requests import ExtrasRequest

    source = gradient(10, 10)
    (image,) = ctx.engine.generate(ExtrasRequest(images=(source,), save_images=False)).images
    assert np.array_equal(np.asarray(image.image), np.asarray(source)) and image.infotext == ""
