"""Inpainting and outpainting through the engine on tiny real models (an ordinary 4-channel SD1 model,
a 9-channel inpainting model, SDXL): masked content, "Only masked", invert, blur, infotext, files,
seeds, and the modules shared with txt2img/img2img."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import UnsupportedModelError, ValidationError
from pipelines.imaging import masks
from pipelines.imaging.image_ops import encode_latents
from pipelines.imaging.latent_upscale import upscale_latents
from pipelines.infotext.codec import parse_infotext
from pipelines.modes import inpaint, outpaint
from pipelines.modes.common import job_pipeline
from pipelines.outputs import read_infotext
from pipelines.requests import Img2ImgRequest, OutpaintRequest, Txt2ImgRequest
from pipelines.requests.hires import HiresFix
from tests.support.tiny_models import save_sd15_folder

BASE = dict(prompt="a red fox", negative_prompt="blurry", width=64, height=64, steps=4, seed=5)
BOX = (30, 20, 60, 44)  # the masked rectangle in the 96x64 init image


def noise_image(size=(96, 64), seed=0) -> Image.Image:
    w, h = size
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def box_mask(size=(96, 64), box=BOX) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


@pytest.fixture(scope="module")
def inpainting_model(tmp_path_factory):
    return save_sd15_folder(tmp_path_factory.mktemp("inpaint-store") / "tiny-inpainting", inpainting=True)


def with_inpainting_model(context: AppContext, inpainting_model: Path) -> AppContext:
    shutil.copytree(inpainting_model, context.settings.data_dir / "models" / "Stable-diffusion" / "tiny-inpainting")
    context.store.refresh()
    return context


@pytest.fixture(scope="module")
def ctx(module_app_context, inpainting_model):
    """The module's one context, with tiny-inpainting (the tiny models load once): for the tests that only run jobs
    and read their own results."""
    return with_inpainting_model(module_app_context, inpainting_model)


@pytest.fixture
def fresh_ctx(app_context, inpainting_model):
    """A context of the test's own, with tiny-inpainting: for the tests that look at the cache or add a model."""
    return with_inpainting_model(app_context, inpainting_model)


def inpaint_request(**kw) -> Img2ImgRequest:
    return Img2ImgRequest(**{**BASE, "init_image": noise_image(), "mask": box_mask(), "model": "tiny-sd15", **kw})


def run(ctx, **kw):
    return ctx.engine.generate(inpaint_request(**kw)).images


def whole_picture_keep(request: Img2ImgRequest) -> np.ndarray:
    """Where "Whole picture" must leave the (resized) init image untouched: the blurred mask is 0."""
    return pixels(inpaint.prepare_canvas(request).overlay) == 0


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-inpainting"])
def test_every_masked_content_option_differs_and_keeps_unmasked_pixels(ctx, model):
    outputs = {}
    for fill in range(4):
        request = inpaint_request(model=model, inpainting_fill=fill)
        image = pixels(ctx.engine.generate(request).images[0].image)
        resized_init = pixels(inpaint.prepare_canvas(request).original)
        keep = whole_picture_keep(request)
        assert keep.sum() > 1000 and (~keep).sum() > 500
        assert np.array_equal(image[keep], resized_init[keep]), fill
        assert not np.array_equal(image[~keep], resized_init[~keep]), fill
        outputs[fill] = image
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.array_equal(outputs[a], outputs[b]), (a, b)


@pytest.mark.parametrize("fill", [2, 3])
def test_latent_fill_replaces_only_the_masked_latents(ctx, fill):
    request = inpaint_request(inpainting_fill=fill)
    canvas = inpaint.prepare_canvas(request)
    base = ctx.store.cache.get(ctx.store.registry.find("tiny-sd15").ref.key)
    if base is None:
        ctx.engine.generate(inpaint_request())
        base = ctx.store.cache.get(ctx.store.registry.find("tiny-sd15").ref.key)
    pipe = job_pipeline(base.pipeline, base.pipeline.scheduler, cls=inpaint.inpaint_class(base.pipeline))
    filled = inpaint.latent_fill(canvas, request)(pipe, [7, 8])["image"]
    plain = inpaint.latent_fill(canvas, inpaint_request(inpainting_fill=3))(pipe, [7, 8])["image"]
    cells = pipe.mask_processor.preprocess(canvas.mask, height=64, width=64)[:, :, ::8, ::8] > 0.5
    cells = cells.expand_as(filled)
    assert filled.shape == (2, 4, 8, 8)
    assert (filled[~cells] == plain[~cells]).all()  # outside the mask: the encoded image, same draw
    if fill == 3:
        assert (filled[cells] == 0).all()
    else:
        assert filled[cells].abs().mean() > 0.3 and not (filled[0][cells[0]] == filled[1][cells[1]]).all()


def test_batch_images_equal_single_runs_of_their_seeds(ctx):
    batch = run(ctx, inpainting_fill=2, batch_size=2, seed=20)
    single = run(ctx, inpainting_fill=2, seed=21)
    assert [i.seed for i in batch] == [20, 21]
    # batched convolutions round differently from single ones: equal up to one level here and there
    assert np.abs(pixels(batch[1].image) - pixels(single[0].image)).max() <= 2
    assert np.abs(pixels(batch[0].image) - pixels(batch[1].image)).max() > 30


def test_only_masked_keeps_the_init_size_and_every_unmasked_pixel(ctx):
    init = noise_image((160, 96), seed=3)
    mask = box_mask((160, 96), (70, 40, 90, 56))
    request = inpaint_request(init_image=init, mask=mask, inpaint_full_res=True, inpaint_full_res_padding=8)
    image = pixels(ctx.engine.generate(request).images[0].image)
    assert image.shape == (96, 160, 3)  # the init image's size; 64x64 was the crop's generation size
    keep = pixels(masks.overlay_mask(masks.blur(mask, 4))) == 0
    assert np.array_equal(image[keep], pixels(init)[keep])
    assert np.abs(image[48, 80] - pixels(init)[48, 80]).sum() > 0  # the middle of the mask was repainted
    canvas = inpaint.prepare_canvas(request)
    assert canvas.box is not None and canvas.image.size == (64, 64)
    left, top, right, bottom = canvas.box
    assert right - left == bottom - top  # the crop has the 1:1 aspect of 64x64


def test_invert_repaints_the_outside(ctx):
    request = inpaint_request(inpainting_mask_invert=1, mask_blur=2)
    image = pixels(ctx.engine.generate(request).images[0].image)
    keep = whole_picture_keep(request)
    assert keep[32, 30] and not keep[2, 2]  # the box's middle (x 20..40 at 64x64) is kept, the corners repainted
    resized_init = pixels(inpaint.prepare_canvas(request).original)
    assert np.array_equal(image[keep], resized_init[keep])
    assert not np.array_equal(image[~keep], resized_init[~keep])


def test_blur_widens_the_repainted_edge(ctx):
    resized_init = pixels(inpaint.prepare_canvas(inpaint_request()).original)
    changed, reach = [], []
    for blur in (0, 3):
        request = inpaint_request(mask_blur=blur)
        changed.append(np.abs(pixels(ctx.engine.generate(request).images[0].image) - resized_init).sum(-1) > 0)
        reach.append(~whole_picture_keep(request))
        assert not (changed[-1] & ~reach[-1]).any()  # nothing changes beyond the blurred mask
    assert reach[0].sum() == 20 * 24 and changed[0].sum() > 0.9 * reach[0].sum()  # the box at 64x64
    ring = changed[1] & ~reach[0]  # repainted only with the soft edge: just around the box
    ys, xs = np.nonzero(ring)
    assert len(ys) > 50 and ys.min() >= 8 and xs.min() >= 8 and ys.max() < 56 and xs.max() < 52


def test_infotext_file_and_reproduction(ctx):
    images = run(ctx, inpainting_fill=0, inpaint_full_res=True, inpainting_mask_invert=1, mask_blur=6,
                 denoising_strength=0.6)
    path = images[0].path
    assert path.parent == ctx.settings.outputs_dir / "img2img-images" / dt.date.today().isoformat()
    info = parse_infotext(read_infotext(path))
    assert info["Mask blur"] == "6" and info["Mask mode"] == "Inpaint not masked"
    assert info["Inpaint area"] == "Only masked" and info["Masked area padding"] == "32"
    assert info["Masked content"] == "fill" and info["Denoising strength"] == "0.6"
    keys = list(info)
    assert keys.index("Denoising strength") < keys.index("RNG") < keys.index("Mask blur") < keys.index("Version")
    again = run(ctx, inpainting_fill=0, inpaint_full_res=True, inpainting_mask_invert=1, mask_blur=6,
                denoising_strength=0.6, save_images=False)
    assert np.array_equal(pixels(images[0].image), pixels(again[0].image))
    plain = parse_infotext(run(ctx, save_images=False)[0].infotext)
    assert plain["Mask blur"] == "4" and not {"Mask mode", "Inpaint area", "Masked content"} & set(plain)


def test_nine_channel_model_runs_img2img_without_a_mask(ctx):
    result = ctx.engine.generate(Img2ImgRequest(**BASE, init_image=noise_image(), model="tiny-inpainting"))
    assert result.images[0].image.size == (64, 64)
    assert "Mask blur" not in result.images[0].infotext


def test_sdxl_inpaints_on_its_own_modules(fresh_ctx, model_store):
    shutil.copytree(model_store / "tiny-sdxl", fresh_ctx.settings.models_dir / "Stable-diffusion" / "tiny-sdxl")
    fresh_ctx.store.refresh()
    request = inpaint_request(model="tiny-sdxl", steps=2)
    image = pixels(fresh_ctx.engine.generate(request).images[0].image)
    keep = whole_picture_keep(request)
    assert np.array_equal(image[keep], pixels(inpaint.prepare_canvas(request).original)[keep])


def test_components_are_shared_across_txt2img_img2img_and_inpaint(fresh_ctx):
    fresh_ctx.engine.generate(Txt2ImgRequest(**BASE, model="tiny-sd15"))
    key = fresh_ctx.store.registry.find("tiny-sd15").ref.key
    cached = fresh_ctx.store.cache.get(key).pipeline
    modules = {name: getattr(cached, name) for name in ("unet", "vae", "text_encoder", "tokenizer")}
    fresh_ctx.engine.generate(Img2ImgRequest(**BASE, init_image=noise_image(), model="tiny-sd15"))
    run(fresh_ctx, inpainting_fill=2)
    run(fresh_ctx, inpaint_full_res=True)
    assert list(fresh_ctx.store.cache.keys()) == [key]
    assert fresh_ctx.store.cache.get(key).pipeline is cached
    view = job_pipeline(cached, cached.scheduler, cls=inpaint.inpaint_class(cached))
    assert type(view).__name__ == "StableDiffusionInpaintPipeline"
    for name, module in modules.items():
        assert getattr(cached, name) is module and getattr(view, name) is module, name


def test_progress_counts_the_steps_that_run(ctx):
    updates = []
    ctx.engine.generate(inpaint_request(steps=10, denoising_strength=0.5), on_progress=updates.append)
    assert [(u.step, u.total) for u in updates if u.unit == "steps"] == [(i, 5) for i in range(1, 6)]


@pytest.mark.parametrize(("changes", "field"), [
    ({"mask": Image.new("L", (96, 64), 0)}, "mask"),
    ({"mask": Image.new("L", (96, 64), 255), "inpainting_mask_invert": 1}, "mask"),
    ({"mask": Image.new("L", (64, 64), 255)}, "mask"),
    ({"mask_blur": -1}, "mask_blur"),
    ({"inpainting_fill": 4}, "inpainting_fill"),
    ({"inpaint_full_res": "yes"}, "inpaint_full_res"),
    ({"inpaint_full_res_padding": -8}, "inpaint_full_res_padding"),
    ({"inpainting_mask_invert": 2}, "inpainting_mask_invert"),
])
def test_bad_inpaint_inputs_name_the_field(ctx, changes, field):
    with pytest.raises(ValidationError) as err:
        ctx.engine.generate(inpaint_request(**changes))
    assert err.value.field == field


def test_outpaint_extends_the_canvas_and_keeps_the_original_away_from_the_seam(ctx):
    init = noise_image((64, 64), seed=6)
    request = OutpaintRequest(**BASE, init_image=init, model="tiny-sd15", expand_left=32, expand_down=16,
                              mask_blur=2)
    result = ctx.engine.generate(request)
    image = pixels(result.images[0].image)
    assert image.shape == (80, 96, 3)  # (64 + 16) high, (64 + 32) wide
    inner = image[0:80 - 16, 32:96]  # where the original sits on the canvas
    margin = outpaint.SEAM + 3 * 2  # the seam strip plus the blur's reach
    assert np.array_equal(inner[:64 - margin, margin:], pixels(init)[:64 - margin, margin:])
    assert not np.array_equal(inner[:, :outpaint.SEAM], pixels(init)[:, :outpaint.SEAM])  # the seam is repainted
    info = parse_infotext(result.images[0].infotext)
    assert info["Outpaint"] == "left 32, right 0, up 0, down 16" and info["Size-1"] == "96"
    assert result.paths[0].parent.parent.name == "img2img-images"


def test_outpaint_prefill_stretches_the_edges_and_the_mask_covers_new_area_and_seam():
    init = Image.new("RGB", (64, 64), (10, 200, 30))
    init.paste((240, 20, 20), (0, 0, 8, 64))  # a red left edge
    request = OutpaintRequest(**BASE, init_image=init, expand_left=24, expand_up=8)
    job = outpaint.inpaint_request(request)
    canvas, mask = pixels(job.init_image), pixels(job.mask)
    assert job.init_image.size == job.mask.size == (88, 72) and (job.width, job.height) == (88, 72)
    assert canvas[40, 4, 0] > 200 and canvas[40, 4, 1] < 60  # the red edge, stretched left
    assert np.array_equal(canvas[8:, 24:], pixels(init))  # the original, exact
    assert (mask[:, :24 + outpaint.SEAM] == 255).all() and (mask[:8 + outpaint.SEAM] == 255).all()
    assert (mask[8 + outpaint.SEAM:, 24 + outpaint.SEAM:] == 0).all()


def test_outpaint_only_masked_generates_a_crop_and_returns_the_canvas(ctx):
    request = OutpaintRequest(**BASE, init_image=noise_image((64, 64)), model="tiny-sd15", expand_right=64,
                              inpaint_full_res=True, inpaint_full_res_padding=0)
    image = ctx.engine.generate(request).images[0].image
    assert image.size == (128, 64)


@pytest.mark.parametrize(("changes", "field"), [
    ({}, "expand_left"),  # nothing to expand
    ({"expand_up": 12}, "expand_up"),
    ({"expand_down": -8}, "expand_down"),
    ({"expand_right": 4096}, "expand_right"),
    ({"expand_left": 8, "mask": Image.new("L", (96, 64), 255)}, "mask"),
])
def test_bad_outpaint_inputs_name_the_field(changes, field):
    with pytest.raises(ValidationError) as err:
        OutpaintRequest(**{**BASE, "init_image": noise_image(), **changes}).validate()
    assert err.value.field == field


def decoded_latent_upscale(ctx, image: Image.Image, seed: int) -> np.ndarray:
    """What resize mode 3 starts from, decoded: the init's latents at its own size, upscaled to 64x64."""
    pipe = ctx.store.cache.get(ctx.store.registry.find("tiny-sd15").ref.key).pipeline
    with torch.no_grad():
        latents = encode_latents(pipe, pipe.image_processor.preprocess(image), [torch.Generator().manual_seed(seed)])
        upscaled = upscale_latents(latents, 64, 64, "Latent")
        decoded = pipe.vae.decode(upscaled / pipe.vae.config.scaling_factor).sample
    return pixels(pipe.image_processor.postprocess(decoded)[0])


def test_resize_mode_3_denoises_from_upscaled_latents(ctx):
    init = noise_image((40, 24), seed=8)  # small: encoded at its own size, then upscaled in latent space
    kw = dict(BASE, init_image=init, model="tiny-sd15", steps=20, denoising_strength=0.05, sampler_name="Euler")
    latent = ctx.engine.generate(Img2ImgRequest(**kw, resize_mode=3)).images[0]
    pixel = ctx.engine.generate(Img2ImgRequest(**kw, resize_mode=0)).images[0]
    assert latent.image.size == (64, 64)
    start = decoded_latent_upscale(ctx, init, BASE["seed"])
    near, other = np.abs(pixels(latent.image) - start).mean(), np.abs(pixels(pixel.image) - start).mean()
    assert near < 0.7 * other, (near, other)  # one denoising step of a random UNet moves it somewhat
    again = ctx.engine.generate(Img2ImgRequest(**kw, resize_mode=3, save_images=False)).images[0]
    assert np.array_equal(pixels(again.image), pixels(latent.image))


def test_resize_mode_3_is_refused_where_it_cannot_run(ctx):
    with pytest.raises(ValidationError) as err:
        ctx.engine.generate(inpaint_request(resize_mode=3))
    assert err.value.field == "resize_mode" and "without a mask" in err.value.message
    with pytest.raises(ValidationError) as err:
        ctx.engine.generate(Img2ImgRequest(**BASE, init_image=noise_image(), model="tiny-inpainting", resize_mode=3))
    assert err.value.field == "resize_mode" and "inpainting models" in err.value.message


def test_txt2img_on_an_inpainting_checkpoint_draws_from_a_blank_canvas(ctx):
    request = Txt2ImgRequest(prompt="a red fox", width=64, height=64, steps=3, seed=4, model="tiny-inpainting")
    first, again = ctx.engine.generate(request).images[0], ctx.engine.generate(request).images[0]
    other = ctx.engine.generate(Txt2ImgRequest(**{**request.to_dict(), "seed": 5})).images[0]
    assert first.image.size == (64, 64) and "Model: tiny-inpainting" in first.infotext
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(other.image))
    with pytest.raises(UnsupportedModelError, match="inpainting checkpoint: hires fix"):
        ctx.engine.generate(Txt2ImgRequest(**{**request.to_dict(), "hires": HiresFix(hr_upscaler="Latent")}))
