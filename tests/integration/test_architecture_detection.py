"""Models are identified from their own files (configs, tensor names), never from their names."""

from __future__ import annotations

import shutil

import pytest

from pipelines.errors import UnsupportedModelError
from pipelines.models.architecture import Architecture, detect_folder, detect_single_file
from tests.support.ldm_export import export_sd15_single_file
from tests.support.tiny_models import save_sd2_folder, save_sd15_folder


def test_folders_by_structure(model_store, tmp_path):
    save_sd2_folder(tmp_path / "looks-like-sd15-by-name")
    save_sd15_folder(tmp_path / "paint", inpainting=True)
    assert detect_folder(model_store / "tiny-sd15").architecture is Architecture.SD1
    assert detect_folder(tmp_path / "looks-like-sd15-by-name").architecture is Architecture.SD2
    assert detect_folder(model_store / "tiny-sdxl").architecture is Architecture.SDXL
    paint = detect_folder(tmp_path / "paint")
    assert paint.inpainting and paint.architecture is Architecture.SD1 and paint.label == "SD 1.x inpainting"


def test_single_files_by_tensor_names(model_store, tmp_path):
    sd1 = detect_single_file(model_store / "tiny-sd15-file.safetensors")
    assert sd1.architecture is Architecture.SD1 and not sd1.inpainting
    save_sd15_folder(tmp_path / "paint", inpainting=True)
    paint = detect_single_file(export_sd15_single_file(tmp_path / "paint", tmp_path / "sdxl-named.safetensors"))
    assert paint.architecture is Architecture.SD1 and paint.inpainting  # the name says sdxl; the tensors don't


def test_turbo_is_a_hint_on_top_of_the_detected_architecture(model_store, tmp_path):
    shutil.copytree(model_store / "tiny-sdxl", tmp_path / "my-sdxl-turbo")
    kind = detect_folder(tmp_path / "my-sdxl-turbo")
    assert kind.architecture is Architecture.SDXL and kind.turbo and kind.label == "SDXL Turbo"


def test_unsupported_pipelines_are_named(tmp_path):
    (tmp_path / "flux").mkdir()
    (tmp_path / "flux" / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    with pytest.raises(UnsupportedModelError, match="'FluxPipeline' is not supported"):
        detect_folder(tmp_path / "flux")
