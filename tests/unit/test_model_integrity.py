"""pipelines.models.integrity on real files: safetensors and torch.save pickles, whole, cut at every part of
the layout, padded, or not weights at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipelines.errors import DamagedModelError, ModelNotFoundError
from pipelines.models.integrity import check_on_disk, folder_damage, pickle_damage, safetensors_damage, size_text
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind

TENSORS = {"a": torch.zeros(64, 64), "b": torch.ones(1000)}  # 16 KiB + 4,000 bytes of data


@pytest.fixture
def whole(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    save_file(TENSORS, str(path), metadata={"note": "x"})
    return path


def header_length(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[:8], "little")


def test_a_whole_file_passes(whole):
    assert safetensors_damage(whole) is None


@pytest.mark.parametrize(("keep", "says"), [
    (0, "is not a safetensors file (it has only 0 bytes)"),
    (5, "is not a safetensors file (it has only 5 bytes)"),
    (40, "is damaged or cut short (its header alone should be"),
])
def test_cut_inside_the_header(whole, keep, says):
    whole.write_bytes(whole.read_bytes()[:keep])
    assert says in safetensors_damage(whole)


def test_cut_inside_the_data_gives_both_sizes(whole):
    data = whole.read_bytes()
    whole.write_bytes(data[: 8 + header_length(whole) + 10_000])
    assert safetensors_damage(whole) == ("model.safetensors is damaged or cut short (its header says 19.9 KiB of "
                                         "tensors, the file has 9.8 KiB); download it again")


def test_bytes_past_the_data_and_foreign_bytes(whole):
    whole.write_bytes(whole.read_bytes() + b"\0" * 100)
    assert "is damaged (100 bytes more than its header describes)" in safetensors_damage(whole)
    whole.write_bytes(b"<!DOCTYPE html><html>Not Found</html>" * 10)
    assert "is not a safetensors file (its first bytes are no safetensors header)" in safetensors_damage(whole)
    whole.write_bytes((12).to_bytes(8, "little") + b"not json at all")
    assert "is not a safetensors file (its header is not JSON)" in safetensors_damage(whole)
    for entry in ('{"a": {"data_offsets": 7}}', '{"a": {"data_offsets": []}}', '{"a": 3}'):
        whole.write_bytes(len(entry).to_bytes(8, "little") + entry.encode())
        assert "is not a safetensors file (its header has no valid data offsets)" in safetensors_damage(whole)


def test_zip_pickles_cut_short_are_caught_and_old_pickles_pass(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": TENSORS}, path)
    assert pickle_damage(path) is None
    path.write_bytes(path.read_bytes()[:5000])
    assert "model.ckpt is damaged or cut short" in pickle_damage(path)
    torch.save(TENSORS, path, _use_new_zipfile_serialization=False)  # no cheap check: left to torch.load
    assert pickle_damage(path) is None


def test_folders_check_the_files_diffusers_loads(tmp_path, whole):
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    shutil.copy(whole, folder / "unet" / "diffusion_pytorch_model.safetensors")
    (folder / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"unused variant, damaged")
    (folder / "old-single-file.safetensors").write_bytes(b"not loaded from a pipeline folder")
    assert folder_damage(folder, "model") is None
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()  # now the fp16 variant is what loads
    assert folder_damage(folder, "model").startswith("model/unet/diffusion_pytorch_model.fp16.safetensors is not")


def test_check_on_disk_raises_for_damaged_and_deleted_models(tmp_path, whole):
    record = ModelRecord(ref=ModelRef(SourceKind.SINGLE_FILE, str(whole), ModelType.LORA), name="model", path=whole)
    check_on_disk(record)
    whole.write_bytes(whole.read_bytes()[:-1])
    with pytest.raises(DamagedModelError, match="model.safetensors is damaged or cut short"):
        check_on_disk(record)
    whole.unlink()
    with pytest.raises(ModelNotFoundError, match="model is no longer on disk .* press Refresh"):
        check_on_disk(record)


def test_sizes_read_as_people_read_them():
    assert [size_text(n) for n in (40, 12_800, 300 * 2**20, int(1.2 * 2**30))] == [
        "40 bytes", "12.5 KiB", "300.0 MiB", "1.20 GiB"]


def test_a_damaged_hub_snapshot_says_which_cache_folder_to_delete(tmp_path, whole):
    snapshot = tmp_path / "hub" / "models--someone--sd" / "snapshots" / "0123abcd"
    (snapshot / "unet").mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    (snapshot / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(whole.read_bytes()[:-10])
    record = ModelRecord(ref=ModelRef(SourceKind.HUB, "someone/sd"), name="someone/sd", path=snapshot)
    with pytest.raises(DamagedModelError) as err:
        check_on_disk(record)
    assert str(err.value).startswith("someone/sd/unet/diffusion_pytorch_model.safetensors is damaged or cut short")
    assert f"delete {tmp_path / 'hub' / 'models--someone--sd'}, then select it again" in str(err.value)
