"""Single-file SD 2.x checkpoints: epsilon or v-prediction is decided from the model, not from its config.

Two tiny SD2 files whose UNets answer the probe like an epsilon model (output = input at the last
timestep) and like a v model (output far below the input) are loaded through the real store, each
with a config that says the opposite: a sidecar folder, and a reference repo in the HF cache shaped
like ``stabilityai/stable-diffusion-2-1``. Markers in the file and an A1111 yaml beside it win over the
probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.models.prediction import Prediction
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import make_settings
from tests.support.hf_cache import install_into_hf_cache
from tests.support.ldm_export import UNET_PREFIX, export_sd2_single_file, write_sidecar_config
from tests.support.tiny_models import save_sd2_folder
from webui.components.model_hint import hint_text

REQUEST = dict(prompt="a lighthouse", width=64, height=64, steps=2, seed=5, sampler_name="Euler")
REFERENCE = "reference/sd2-768-v"
# The probe feeds a constant 0.5 latent: a UNet that outputs 0.5 there predicts its input (epsilon),
# one that outputs -1.5 is 2 below it (v-prediction; the threshold is -1).
EPSILON_LIKE, V_LIKE = 0.5, -1.5


def _set_prediction_type(config_folder: Path, prediction: str) -> None:
    path = config_folder / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "prediction_type": prediction}))


def _constant_unet_file(tensors: dict[str, torch.Tensor], value: float, out: Path,
                        metadata: dict[str, str] | None = None) -> Path:
    """The exported file with its UNet's last conv made to output ``value`` everywhere."""
    tensors = dict(tensors)
    weight, bias = UNET_PREFIX + "out.2.weight", UNET_PREFIX + "out.2.bias"
    tensors[weight] = torch.zeros_like(tensors[weight])
    tensors[bias] = torch.full_like(tensors[bias], value)
    save_file(tensors, str(out), metadata={"format": "pt", **(metadata or {})})
    return out


@pytest.fixture(scope="module")
def sd2_data(tmp_path_factory) -> Path:
    """A data dir with SD2 single files whose configs contradict their UNets, and a reference repo."""
    root = tmp_path_factory.mktemp("sd2")
    folder = save_sd2_folder(root / "tiny-sd2", seed=0)  # its scheduler says epsilon
    tensors = load_file(str(export_sd2_single_file(folder, root / "plain.safetensors")))
    ckpts = root / "data" / "models" / "Stable-diffusion"
    ckpts.mkdir(parents=True)
    # a v UNet with a sidecar that says epsilon
    _constant_unet_file(tensors, V_LIKE, ckpts / "sd2-v.safetensors")
    write_sidecar_config(folder, ckpts / "sd2-v.config")
    # epsilon UNets without a sidecar: built with the reference configs, which say v (as 2-1's do)
    _constant_unet_file(tensors, EPSILON_LIKE, ckpts / "sd2-eps.safetensors")
    _constant_unet_file(tensors, EPSILON_LIKE, ckpts / "sd2-eps-marked.safetensors",
                        metadata={"modelspec.prediction_type": "v"})
    _constant_unet_file(tensors, EPSILON_LIKE, ckpts / "sd2-eps-yaml.safetensors")
    (ckpts / "sd2-eps-yaml.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    reference = write_sidecar_config(folder, root / "reference")
    _set_prediction_type(reference, "v_prediction")
    install_into_hf_cache(reference, REFERENCE, root / "data" / "hf")
    return root / "data"


@pytest.fixture(scope="module")
def ctx(sd2_data) -> AppContext:
    return AppContext.build(make_settings(sd2_data, hf_cache_dir=sd2_data / "hf" / "hub",
                                          reference_configs={"sd2": REFERENCE}))


def _generate(ctx: AppContext, name: str):
    result = ctx.engine.generate(Txt2ImgRequest(**REQUEST, model=name))
    loaded = ctx.store.loaded(name)
    assert result.paths and result.images[0].image.size == (64, 64)
    return loaded, np.asarray(result.images[0].image).astype(int)


@pytest.mark.parametrize("name, expected, measure", [("sd2-v", Prediction.V, -2.0),
                                                      ("sd2-eps", Prediction.EPSILON, 0.0)])
def test_the_unet_probe_decides_against_the_config(ctx, name, expected, measure):
    assert ctx.store.registry.find(name).prediction is None  # nothing in the file or beside it
    loaded, _ = _generate(ctx, name)
    decision = loaded.record.prediction
    assert decision.prediction is expected and decision.source == "UNet probe"
    assert decision.measure == pytest.approx(measure, abs=1e-3)
    config = loaded.pipeline.scheduler.config
    assert config.prediction_type == expected.value
    for sampler in ("DPM++ 2M", "Euler a", "DDIM", "LCM"):  # every sampler a job builds from the model's config
        spec, schedule = samplers.resolve(sampler)
        assert samplers.build_scheduler(config, spec, schedule).config.prediction_type == expected.value


def test_the_decision_is_kept_so_the_unet_is_probed_once(ctx):
    first = ctx.store.load("sd2-v").record.prediction
    ctx.store.unload()
    ctx.store.refresh()
    assert ctx.store.registry.find("sd2-v").prediction is first
    again = ctx.store.load("sd2-v")
    assert again.record.prediction is first and again.pipeline.scheduler.config.prediction_type == "v_prediction"
    assert hint_text(ctx, "sd2-v") == "Predicts v-prediction (UNet probe: mean -2.000)"  # under the selector


def test_a_marker_in_the_file_or_a_yaml_beside_it_wins_over_the_probe(ctx):
    marked = ctx.store.registry.find("sd2-eps-marked").prediction
    assert (marked.prediction, marked.source) == (Prediction.V, "modelspec.prediction_type")
    assert ctx.store.registry.find("sd2-eps-yaml").prediction.source == "sd2-eps-yaml.yaml"
    probed, probed_pixels = _generate(ctx, "sd2-eps")
    for name in ("sd2-eps-marked", "sd2-eps-yaml"):
        loaded, pixels = _generate(ctx, name)
        assert loaded.record.prediction.prediction is Prediction.V and not loaded.record.prediction.probed
        assert loaded.pipeline.scheduler.config.prediction_type == "v_prediction"
        # the same weights sampled as v instead of epsilon: the prediction type reaches the sampler
        assert np.abs(pixels - probed_pixels).max() > 10
