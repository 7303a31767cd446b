"""What a checkpoint file or the A1111 yaml beside it states about its prediction type (header only)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from pipelines.models.header import read_header
from pipelines.models.prediction import Prediction, stated_prediction


def _file(tmp_path, metadata=None, extra_key=None):
    path = tmp_path / "model.safetensors"
    tensors = {"model.diffusion_model.out.2.bias": torch.zeros(4)}
    if extra_key:
        tensors[extra_key] = torch.tensor([])
    save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})
    return path


def _stated(path):
    decision = stated_prediction(path, read_header(path))
    return decision and (decision.prediction, decision.source)


@pytest.mark.parametrize("metadata, extra_key, expected", [
    ({"modelspec.prediction_type": "v"}, None, (Prediction.V, "modelspec.prediction_type")),
    ({"modelspec.prediction_type": "epsilon"}, "v_pred", (Prediction.EPSILON, "modelspec.prediction_type")),
    ({"modelspec.architecture": "stable-diffusion-v2-768-v"}, None, (Prediction.V, "modelspec.architecture")),
    ({}, "v_pred", (Prediction.V, "v_pred tensor")),
    ({"modelspec.prediction_type": "flow"}, None, None),
    ({}, None, None),
])
def test_markers_in_the_file(tmp_path, metadata, extra_key, expected):
    assert _stated(_file(tmp_path, metadata, extra_key)) == expected


def test_an_a1111_yaml_beside_the_file(tmp_path):
    path = _file(tmp_path)
    yaml = tmp_path / "model.yaml"
    yaml.write_text('model:\n  params:\n    parameterization: "v"\n')
    assert _stated(path) == (Prediction.V, "model.yaml")
    yaml.write_text("model:\n  params:\n    linear_start: 0.00085\n")  # LDM's default: eps
    assert _stated(path) == (Prediction.EPSILON, "model.yaml")
    yaml.write_text("not: [a config")
    assert _stated(path) is None
    marked = _file(tmp_path, {"modelspec.prediction_type": "epsilon"})
    yaml.write_text('model:\n  params:\n    parameterization: "v"\n')
    assert _stated(marked) == (Prediction.EPSILON, "modelspec.prediction_type")  # the file's own marker first
