"""Stable unCLIP variations on a tiny real StableUnCLIPImg2ImgPipeline: listed as an image-variation model, loaded
through the store, the same image as diffusers' own pipeline for a seed and noise level, and over
``POST /atelier/v1/image-variation`` a saved PNG whose infotext carries the noise level; bad noise levels are 422s."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.models.kinds import ModelType
from pipelines.outputs import read_infotext
from pipelines.requests.variation import ImageVariationRequest
from tests.support.apps import make_settings
from tests.support.tiny_seed_models import save_image_variation_folder, save_unclip_folder

RED = Image.new("RGB", (64, 64), (220, 30, 30))
JOB = dict(width=64, height=64, steps=2, sampler_name="Euler", cfg_scale=3.0, prompt="a red square")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> AppContext:
    data_dir = tmp_path_factory.mktemp("unclip")
    save_unclip_folder(data_dir / "models" / "Stable-diffusion" / "tiny-unclip")
    return AppContext.build(make_settings(data_dir))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def test_listed_as_unclip_and_the_same_image_as_diffusers_own_pipeline(ctx):
    from diffusers import StableUnCLIPImg2ImgPipeline

    record = ctx.store.records(ModelType.IMAGE_VARIATION)[0]
    assert record.name == "tiny-unclip" and record.kind.label == "SD 2.x unCLIP"
    ours = ctx.engine.generate(ImageVariationRequest(**JOB, image=RED, seed=4, noise_level=300, save_images=False))
    reference = StableUnCLIPImg2ImgPipeline.from_pretrained(str(record.path))
    spec, schedule = samplers.resolve("Euler", "Automatic")
    reference.scheduler = samplers.build_scheduler(reference.scheduler.config, spec, schedule)
    expected = reference(image=RED, prompt="a red square", width=64, height=64, num_inference_steps=2,
                         guidance_scale=3.0, noise_level=300, generator=torch.Generator().manual_seed(4)).images[0]
    assert np.array_equal(pixels(ours.images[0].image), pixels(expected))


def test_api_saves_the_noise_level_and_reproduces_by_seed_and_level(ctx):
    from fastapi.testclient import TestClient

    from webui.api import ApiConfig, create_api_app

    buffer = io.BytesIO()
    RED.save(buffer, format="PNG")
    body = {"image": base64.b64encode(buffer.getvalue()).decode(), **JOB, "seed": 7}
    with TestClient(create_api_app(ctx, ApiConfig()), base_url="http://testserver/atelier/v1") as api:
        runs = [api.post("/image-variation", json={**body, "noise_level": level}) for level in (0, 600, 600)]
        assert [r.status_code for r in runs] == [200, 200, 200], runs[0].text
        images = [Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0]))) for r in runs]
        assert not np.array_equal(pixels(images[0]), pixels(images[1]))  # the noise level changes the image
        assert np.array_equal(pixels(images[1]), pixels(images[2]))  # the same seed and level: the same image
        info = json.loads(runs[1].json()["info"])
        params = parse_infotext(info["infotexts"][0])
        assert params["Noise level"] == "600" and params["Seed"] == "7" and params["Model"] == "tiny-unclip"
        assert params["Prompt"] == "a red square"
        saved = sorted((ctx.settings.outputs_dir / "variation-images").rglob("*.png"))
        assert sorted(parse_infotext(read_infotext(p))["Noise level"] for p in saved) == ["0", "600", "600"]
        bad = {level: api.post("/image-variation", json={**body, "noise_level": level}) for level in (1000, -1, "lots")}
        assert all(r.status_code == 422 and "noise_level" in r.text for r in bad.values()), bad
        assert "0 to 999" in bad[1000].text  # the noising scheduler's 1000 steps


def test_progress_previews_interrupt_and_skip_reach_the_loop(ctx):
    """Steps are reported with live previews (every 2nd step here); Skip ends a batch early and the next one runs;
    Interrupt keeps the image so far and runs no more batches."""
    updates, asks = [], {"skip": ctx.engine.skip, "interrupt": ctx.engine.interrupt}

    def on_progress(update, ask=None) -> None:
        if update.unit == "steps":
            updates.append(update)
            if update.step == 1 and ask and len(updates) == 1:
                asks[ask]()

    job = ImageVariationRequest(**{**JOB, "steps": 8, "n_iter": 2}, image=RED, seed=5, save_images=False)
    skipped = ctx.engine.generate(job, on_progress=lambda u: on_progress(u, "skip"))
    assert not skipped.interrupted and len(skipped.images) == 2 and [u.step for u in updates] == [1, *range(1, 9)]
    assert any(u.preview is not None for u in updates)
    updates.clear()
    stopped = ctx.engine.generate(job, on_progress=lambda u: on_progress(u, "interrupt"))
    assert stopped.interrupted and len(stopped.images) == 1 and [u.step for u in updates] == [1]


def test_prompt_editing_switches_the_text_mid_job(ctx):
    def made(prompt: str) -> np.ndarray:
        job = ImageVariationRequest(**{**JOB, "prompt": prompt, "steps": 4}, image=RED, seed=6, save_images=False)
        return pixels(ctx.engine.generate(job).images[0].image)

    plain = made("a red square")
    assert not np.array_equal(plain, made("[a red square:a blue circle:1]"))  # steps 3 and 4 see the new text
    assert np.array_equal(plain, made("[a red square:a blue circle:4]"))  # a switch after the last step: never


def test_other_image_variation_models_refuse_a_noise_level_and_a_prompt(ctx):
    save_image_variation_folder(ctx.settings.checkpoint_dirs[0] / "tiny-variation")
    ctx.store.registry.refresh()
    with pytest.raises(Exception) as refused:
        ctx.engine.generate(ImageVariationRequest(**JOB, image=RED, variation_model="tiny-variation", noise_level=5))
    assert getattr(refused.value, "field", None) == "noise_level" and "not a Stable unCLIP" in str(refused.value)
    with pytest.raises(Exception) as no_prompt:  # JOB has a prompt, which only unCLIP reads
        ctx.engine.generate(ImageVariationRequest(**JOB, image=RED, variation_model="tiny-variation"))
    assert getattr(no_prompt.value, "field", None) == "prompt" and "takes no prompt" in str(no_prompt.value)


def test_vary_keeps_an_unclip_images_prompts_and_noise_level(ctx):
    from pipelines.modes.variation import vary_by_embedding

    made = ctx.engine.generate(ImageVariationRequest(**JOB, image=RED, seed=7, noise_level=600)).paths[0]
    image = Image.open(made)
    own = vary_by_embedding(image, read_infotext(made), ctx.store)
    assert (own.noise_level, own.prompt, own.steps, own.sampler_name) == (600, "a red square", 2, "Euler")
    assert own.seed != 7 and vary_by_embedding(image, read_infotext(made), ctx.store, noise_level=20).noise_level == 20


def test_a_hub_repo_downloads_with_its_image_normalizer_and_noising_scheduler(ctx, tmp_path):
    from tests.support.hub_server import LocalHub

    with LocalHub() as hub:
        hub.add_repo("someone/unclip", ctx.settings.checkpoint_dirs[0] / "tiny-unclip")
        hub_ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        record = hub_ctx.store.download("someone/unclip")
    assert record.type is ModelType.IMAGE_VARIATION and record.kind.unclip
    for part in ("image_encoder", "image_normalizer", "feature_extractor", "image_noising_scheduler"):
        assert any((record.path / part).iterdir()), part
    result = hub_ctx.engine.generate(ImageVariationRequest(**JOB, image=RED, seed=3, noise_level=10,
                                                           save_images=False))
    assert "Model: someone/unclip" in result.images[0].infotext and "Noise level: 10" in result.images[0].infotext
