"""img2img through the engine on tiny real models: sizes, input modes, seeds, strength, files,
progress, and the modules it shares with txt2img."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.modes import img2img
from pipelines.outputs import read_infotext
from pipelines.requests import Img2ImgRequest, Txt2ImgRequest
from tests.support.apps import install_models

BASE = dict(prompt="a red fox", negative_prompt="blurry", width=64, height=64, steps=4, model="tiny-sd15")


def gradient(size=(80, 48), mode="RGB") -> Image.Image:
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    y = np.linspace(255, 0, h, dtype=np.uint8)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, np.full_like(x, 128)], -1), "RGB").convert(mode)


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


def generate(ctx, **kw):
    return ctx.engine.generate(Img2ImgRequest(**{**BASE, "init_image": gradient(), **kw}))


# The tests that only run jobs and read their own results share the module's context (tiny-sd15 loads once);
# those that count output files, look at the cache or add a model take a fresh ``app_context``.
@pytest.mark.parametrize("resize_mode", [0, 1, 2])
def test_output_has_the_requested_size_for_each_resize_mode(module_app_context, resize_mode):
    result = generate(module_app_context, resize_mode=resize_mode, width=64, height=96, steps=2, seed=1)
    assert result.images[0].image.size == (64, 96)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16"])
def test_odd_input_modes_work(module_app_context, mode):
    image = gradient(mode=mode) if mode != "I;16" else Image.fromarray(
        np.linspace(0, 65535, 80 * 48).reshape(48, 80).astype(np.uint16))
    assert image.mode == mode
    result = generate(module_app_context, init_image=image, steps=2, seed=1)
    assert result.images[0].image.size == (64, 64) and result.images[0].image.mode == "RGB"


def test_same_seed_same_image_strength_changes_it(module_app_context):
    a, b = (pixels(generate(module_app_context, seed=3).images[0].image) for _ in range(2))
    c = pixels(generate(module_app_context, seed=3, denoising_strength=0.5).images[0].image)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def vae_round_trip(ctx, image: Image.Image, seed: int) -> np.ndarray:
    """The input as the model's VAE gives it back, encoded with the job's first draw from its generator
    (as diffusers does): what no denoising at all would return. The tiny random VAE is far from lossless."""
    pipe = ctx.store.cache.get(ctx.store.registry.find("tiny-sd15").ref.key).pipeline
    with torch.no_grad():
        encoded = pipe.vae.encode(pipe.image_processor.preprocess(image)).latent_dist
        decoded = pipe.vae.decode(encoded.sample(torch.Generator("cpu").manual_seed(seed))).sample
    return pixels(pipe.image_processor.postprocess(decoded)[0])


def test_low_strength_stays_near_the_input_full_strength_does_not(module_app_context):
    kw = dict(init_image=gradient((64, 64)), steps=10, seed=4, sampler_name="Euler")
    near = pixels(generate(module_app_context, denoising_strength=0.1, **kw).images[0].image)
    far = pixels(generate(module_app_context, denoising_strength=1.0, **kw).images[0].image)
    source = vae_round_trip(module_app_context, gradient((64, 64)), seed=4)
    near_diff, far_diff = np.abs(near - source).mean(), np.abs(far - source).mean()
    assert near_diff < 16 and far_diff > 3 * near_diff, (near_diff, far_diff)


def test_infotext_saved_under_img2img_images_and_parsed_back(app_context):
    result = generate(app_context, seed=100, denoising_strength=0.5, batch_size=2)
    folder = app_context.settings.outputs_dir / "img2img-images" / dt.date.today().isoformat()
    assert [p.name for p in result.paths] == ["00000-100.png", "00001-101.png"]
    assert all(p.parent == folder for p in result.paths)
    text = read_infotext(result.paths[1])
    info = parse_infotext(text)
    assert info["Denoising strength"] == "0.5" and info["Seed"] == "101" and info["Steps"] == "4"
    assert info["Prompt"] == "a red fox" and info["Model"] == "tiny-sd15"
    keys = list(info)
    assert keys.index("Model") < keys.index("Denoising strength") < keys.index("RNG")


def test_progress_counts_the_steps_that_actually_run(module_app_context):
    updates = []
    request = Img2ImgRequest(**{**BASE, "steps": 10, "init_image": gradient()}, denoising_strength=0.5)
    module_app_context.engine.generate(request, on_progress=updates.append)
    steps = [(u.step, u.total) for u in updates if u.unit == "steps"]
    assert steps == [(i, 5) for i in range(1, 6)]


def test_components_are_shared_with_txt2img(app_context, monkeypatch):
    views = []
    real = img2img.run_batches.__globals__["job_pipeline"]

    def spy(*args, **kwargs):
        views.append(real(*args, **kwargs))
        return views[-1]

    monkeypatch.setitem(img2img.run_batches.__globals__, "job_pipeline", spy)
    app_context.engine.generate(Txt2ImgRequest(**BASE, seed=1))
    generate(app_context, seed=1)
    txt_view, img_view = views
    assert type(img_view).__name__ == "StableDiffusionImg2ImgPipeline"
    cache = app_context.store.cache
    cached = cache.get(app_context.store.registry.find("tiny-sd15").ref.key).pipeline
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        assert getattr(img_view, name) is getattr(cached, name) is getattr(txt_view, name), name
    assert len(cache.keys()) == 1


def test_sdxl_runs_img2img_on_its_own_modules(app_context, model_store):
    install_models(model_store, app_context.settings.data_dir, ["tiny-sdxl"])
    app_context.store.refresh()
    result = generate(app_context, model="tiny-sdxl", steps=2, seed=2)
    assert result.images[0].image.size == (64, 64) and "Model: tiny-sdxl" in result.images[0].infotext


@pytest.mark.parametrize(("field", "changes"), [
    ("init_image", {"init_image": None}),
    ("init_image", {"init_image": "not an image"}),
    ("denoising_strength", {"denoising_strength": 1.5}),
    ("denoising_strength", {"denoising_strength": -0.1}),
    ("denoising_strength", {"denoising_strength": 0.1, "steps": 4}),  # no step would run
    ("resize_mode", {"resize_mode": 7}),
    ("width", {"width": 65}),
    ("steps", {"steps": 0}),
])
def test_bad_inputs_name_the_field(module_app_context, field, changes):
    with pytest.raises(ValidationError) as err:
        module_app_context.engine.generate(Img2ImgRequest(**{**BASE, "init_image": gradient(), **changes}))
    assert err.value.field == field
