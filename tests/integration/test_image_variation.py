"""Image variations from an image embedding on a tiny real StableDiffusionImageVariationPipeline: listed as its
own kind (not a checkpoint), loaded through the store, reproducible by seed, following the input image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.models.kinds import ModelType
from pipelines.outputs import read_infotext
from pipelines.requests.variation import ImageVariationRequest
from tests.support.apps import install_models, make_settings
from tests.support.tiny_seed_models import save_image_variation_folder

RED, BLUE = Image.new("RGB", (64, 64), (220, 30, 30)), Image.new("RGB", (64, 64), (20, 40, 230))
JOB = dict(width=64, height=64, steps=2, sampler_name="Euler", cfg_scale=3.0)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, model_store) -> AppContext:
    data_dir = tmp_path_factory.mktemp("variation")
    save_image_variation_folder(data_dir / "models" / "Stable-diffusion" / "tiny-variation")
    install_models(model_store, data_dir, ["tiny-sd15"])
    return AppContext.build(make_settings(data_dir, initial_model="tiny-sd15"))


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image).astype(int)


def test_listed_as_an_image_variation_model_not_a_checkpoint(ctx):
    assert [r.name for r in ctx.store.records(ModelType.IMAGE_VARIATION)] == ["tiny-variation"]
    assert "tiny-variation" not in {r.name for r in ctx.store.checkpoints()}
    assert ctx.store.records(ModelType.IMAGE_VARIATION)[0].kind.label == "SD 1.x image variation"


def test_variations_are_reproducible_and_follow_the_image(ctx):
    gen = ctx.engine.generate
    a, b = gen(ImageVariationRequest(**JOB, image=RED, seed=1)), gen(ImageVariationRequest(**JOB, image=RED, seed=1))
    other_seed = gen(ImageVariationRequest(**JOB, image=RED, seed=2))
    other_image = gen(ImageVariationRequest(**JOB, image=BLUE, seed=1))
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(other_seed)) and not np.array_equal(pixels(a), pixels(other_image))
    info = parse_infotext(read_infotext(a.paths[0]))
    assert info["Model"] == "tiny-variation" and info["Variation"] == "image embedding" and info["Seed"] == "1"
    assert a.paths[0].parent.parent.name == "variation-images"


def test_without_an_image_or_a_model_it_says_which_field(ctx, tmp_path):
    with pytest.raises(ValidationError) as no_image:
        ctx.engine.generate(ImageVariationRequest(**JOB))
    assert no_image.value.field == "image"
    bare = AppContext.build(make_settings(tmp_path))
    with pytest.raises(ValidationError) as no_model:
        bare.engine.generate(ImageVariationRequest(**JOB, image=RED))
    assert no_model.value.field == "variation_model" and "StableDiffusionImageVariationPipeline" in str(no_model.value)


def test_api_route_returns_variations_and_names_bad_fields(ctx):
    """``POST /atelier/v1/image-variation`` on this module's context (its model is loaded once)."""
    import base64
    import io
    import json

    from fastapi.testclient import TestClient

    from webui.api import ApiConfig, create_api_app

    buffer = io.BytesIO()
    RED.save(buffer, format="PNG")
    body = {"image": base64.b64encode(buffer.getvalue()).decode(), **JOB, "seed": 1, "batch_size": 2}
    with TestClient(create_api_app(ctx, ApiConfig()), base_url="http://testserver/atelier/v1") as api:
        response = api.post("/image-variation", json=body)
        assert response.status_code == 200, response.text
        images = [Image.open(io.BytesIO(base64.b64decode(b))) for b in response.json()["images"]]
        assert [im.size for im in images] == [(64, 64), (64, 64)]
        info = json.loads(response.json()["info"])
        assert info["all_seeds"] == [1, 2] and info["sd_model_name"] == "tiny-variation"
        local = ctx.engine.generate(ImageVariationRequest(**JOB, image=RED, seed=1, batch_size=2, save_images=False))
        assert np.array_equal(np.asarray(images[0].convert("RGB")), pixels(local))  # the same job as the engine's
        bad = api.post("/image-variation", json={**body, "image": "not base64!"})
        assert bad.status_code == 422 and "image" in bad.text
        unknown = api.post("/image-variation", json={**body, "variation_model": "nope"})
        assert 400 <= unknown.status_code < 500 and "nope" in unknown.text


def test_a_hub_repo_downloads_with_its_image_encoder_and_is_listed_apart(ctx, tmp_path):
    from tests.support.hub_server import LocalHub

    with LocalHub() as hub:
        hub.add_repo("someone/image-variations", ctx.settings.checkpoint_dirs[0] / "tiny-variation")
        hub_ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        record = hub_ctx.store.download("someone/image-variations")
    assert record.type is ModelType.IMAGE_VARIATION and (record.path / "image_encoder" / "config.json").is_file()
    result = hub_ctx.engine.generate(ImageVariationRequest(**JOB, image=BLUE, seed=3, save_images=False))
    assert "Model: someone/image-variations" in result.images[0].infotext
