"""What a single-file checkpoint's UNet predicts (noise or "v"), decided from the model, never from its config.

A single file carries weights only; the scheduler config it is loaded with comes from a sidecar folder
or a reference repo (``stabilityai/stable-diffusion-2-1`` for every SD 2.x file), so the config's
``prediction_type`` is an assumption. SD 2.x ships in both kinds: 768-v (v-prediction) and 512-base
(epsilon), with identical tensor names. The decision, in this order:

1. an explicit marker in the file: the SAI model spec's ``modelspec.prediction_type`` metadata (``v`` or
   ``epsilon``), else a ``modelspec.architecture`` ending in ``-v`` (``stable-diffusion-v2-768-v``), else a
   ``v_pred`` tensor (a flag some v-prediction trainers save);
2. an A1111-style ``NAME.yaml`` beside the checkpoint: ``model.params.parameterization`` ``"v"``, or
   ``"eps"`` (LDM's default when the key is absent);
3. SD 2.x only (as A1111 does): a probe of the UNet itself. At the last training timestep the noisy
   latent is almost pure noise, so an epsilon model's output is close to its input, while a v model's
   output (``alpha * noise - sigma * x0``) is far below it. One forward pass on a constant 0.5 latent
   with a constant 0.5 text context at timestep 999: mean(output - input) below -1 is v-prediction.

Steps 1-2 run when the folder is scanned (header and yaml only), step 3 once per file when it is first
loaded; the store keeps the decision on the model's record. Diffusers folders keep their own scheduler
config: that is the model's own statement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch

from pipelines.models.header import SafetensorsHeader

log = logging.getLogger(__name__)

PROBE_TIMESTEP = 999
PROBE_VALUE = 0.5
V_THRESHOLD = -1.0  # mean(output - input) below this is a v-prediction UNet


class Prediction(StrEnum):
    """diffusers' scheduler ``prediction_type`` values."""

    EPSILON = "epsilon"
    V = "v_prediction"

    @property
    def label(self) -> str:
        return "v-prediction" if self is Prediction.V else "epsilon"


@dataclass(frozen=True)
class PredictionDecision:
    prediction: Prediction
    source: str  # what decided it, e.g. "modelspec.prediction_type", "model.yaml", "UNet probe"
    measure: float | None = None  # the probe's mean(output - input)

    @property
    def probed(self) -> bool:
        return self.measure is not None

    def describe(self) -> str:
        how = f"{self.source}: mean {self.measure:+.3f}" if self.probed else self.source
        return f"{self.prediction.label} ({how})"


_METADATA_VALUES = {"v": Prediction.V, "v_prediction": Prediction.V, "v-prediction": Prediction.V,
                    "epsilon": Prediction.EPSILON, "eps": Prediction.EPSILON}


def _from_header(header: SafetensorsHeader) -> PredictionDecision | None:
    stated = header.metadata.get("modelspec.prediction_type", "").strip().lower()
    if stated in _METADATA_VALUES:
        return PredictionDecision(_METADATA_VALUES[stated], "modelspec.prediction_type")
    architecture = header.metadata.get("modelspec.architecture", "").strip().lower().split("/")[0]
    if architecture.endswith("-v"):
        return PredictionDecision(Prediction.V, "modelspec.architecture")
    if "v_pred" in header.keys:
        return PredictionDecision(Prediction.V, "v_pred tensor")
    return None


def yaml_config(checkpoint: Path) -> Path:
    """A1111's per-checkpoint config: ``NAME.yaml`` beside ``NAME.safetensors``."""
    return checkpoint.with_suffix(".yaml")


def _from_yaml(checkpoint: Path) -> PredictionDecision | None:
    path = yaml_config(checkpoint)
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        params = data["model"]["params"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as exc:
        log.warning("%s: not an LDM model config (%s); ignored", path.name, exc)
        return None
    if not isinstance(params, dict):
        return None
    value = str(params.get("parameterization", "eps")).strip().lower()
    if value not in _METADATA_VALUES:
        log.warning("%s: parameterization %r is not v or eps; ignored", path.name, value)
        return None
    return PredictionDecision(_METADATA_VALUES[value], path.name)


def stated_prediction(checkpoint: Path, header: SafetensorsHeader) -> PredictionDecision | None:
    """What the file (1) or its yaml (2) says; None when neither says anything."""
    return _from_header(header) or _from_yaml(checkpoint)


@torch.no_grad()
def probe_unet(unet: Any, device: torch.device) -> PredictionDecision:
    """Run ``unet`` once on a constant latent at the last timestep and read its prediction kind (3)."""
    config = unet.config
    dtype = unet.dtype
    latent = torch.full((1, config.in_channels, 8, 8), PROBE_VALUE, device=device, dtype=dtype)
    context = torch.full((1, 2, config.cross_attention_dim), PROBE_VALUE, device=device, dtype=dtype)
    timestep = torch.tensor([PROBE_TIMESTEP], device=device)
    out = unet(latent, timestep, encoder_hidden_states=context).sample.float()
    measure = float((out - latent[:, : out.shape[1]].float()).mean())
    prediction = Prediction.V if measure < V_THRESHOLD else Prediction.EPSILON
    return PredictionDecision(prediction, "UNet probe", measure)


def apply_prediction(pipe: Any, prediction: Prediction) -> None:
    """Make ``pipe``'s scheduler (and every sampler built from its config) use ``prediction``."""
    config = pipe.scheduler.config
    if config.get("prediction_type") != prediction.value:
        pipe.scheduler = type(pipe.scheduler).from_config(config, prediction_type=prediction.value)
