"""The prompt language over HTTP on tiny models: clip skip and emphasis (override_settings, /options,
infotext), styles (the request field and /prompt-styles), textual-inversion embeddings (/embeddings,
/refresh-embeddings, TI hashes)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from pipelines.models.architecture import Architecture, ModelKind
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind
from tests.support.api import FAST
from tests.support.tiny_networks import save_embedding
from webui.api.routes_models import embedding_entry, encoder_widths

WEIGHTED = "a (teapot:1.6) on a [table:0.7]"
STYLES_CSV = 'name,prompt,negative_prompt\nTeal,"teal glaze, {prompt}",lowres\nStudio,studio lighting,\n'
TI_NAME = "tinyteapotemb"  # 32 wide: the tiny SD1.5 text encoder's width


@pytest.fixture(autouse=True)
def default_prompt_options(api) -> Iterator[None]:
    """Clip skip 1 and emphasis Original in /options for each test (the app is shared), then as they were."""
    keys = ("CLIP_stop_at_last_layers", "emphasis")
    before = {key: api.get("/options").json()[key] for key in keys}
    assert api.post("/options", json={"CLIP_stop_at_last_layers": 1, "emphasis": "Original"}).status_code == 200
    yield
    api.post("/options", json=before)


def _txt2img(api, path: str = "/txt2img", **fields) -> tuple[dict, dict]:
    response = api.post(path, json={**FAST, **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    return body, json.loads(body["info"])


def _init_image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ---- clip skip and emphasis ----------------------------------------------------------------------


def test_clip_skip_override_changes_the_image_and_is_written(api):
    plain, info = _txt2img(api)
    skipped, skipped_info = _txt2img(api, override_settings={"CLIP_stop_at_last_layers": 2})
    assert info["clip_skip"] == 1 and "Clip skip" not in info["infotexts"][0]
    assert skipped_info["clip_skip"] == 2 and "Clip skip: 2" in skipped_info["infotexts"][0]
    assert plain["images"] != skipped["images"]
    assert api.get("/options").json()["CLIP_stop_at_last_layers"] == 1  # for that request only


def test_clip_skip_option_applies_to_requests_that_do_not_override_it(api):
    override, _ = _txt2img(api, override_settings={"CLIP_stop_at_last_layers": 2})
    assert api.post("/options", json={"CLIP_stop_at_last_layers": 2}).status_code == 200
    body, info = _txt2img(api)
    assert info["clip_skip"] == 2 and "Clip skip: 2" in info["infotexts"][0]
    assert body["images"] == override["images"]
    _, info = _txt2img(api, override_settings={"CLIP_stop_at_last_layers": 1})  # a request can still go back
    assert info["clip_skip"] == 1


def test_emphasis_no_norm_changes_a_weighted_prompt_and_is_written(api):
    original, info = _txt2img(api, prompt=WEIGHTED)
    no_norm, no_norm_info = _txt2img(api, prompt=WEIGHTED, override_settings={"emphasis": "No norm"})
    assert "Emphasis" not in info["infotexts"][0]
    assert "Emphasis: No norm" in no_norm_info["infotexts"][0]
    assert original["images"] != no_norm["images"]
    response = api.post("/txt2img", json={**FAST, "override_settings": {"emphasis": "Loud"}})
    assert response.status_code == 422 and response.json()["detail"].startswith("override_settings.emphasis:")


def test_infotext_clip_skip_and_emphasis_become_override_settings(api):
    infotext = f"{WEIGHTED}\nSteps: 3, Sampler: Euler a, CFG scale: 7, Seed: 11, Size: 64x64, Clip skip: 2, " \
               "Emphasis: No norm"
    response = api.post("/txt2img", json={"infotext": infotext})
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert info["clip_skip"] == 2 and info["prompt"] == WEIGHTED
    assert "Clip skip: 2" in info["infotexts"][0] and "Emphasis: No norm" in info["infotexts"][0]
    assert response.json()["parameters"]["override_settings"] == {  # VAE Decoder/Encoder: A1111's Full when absent
        "CLIP_stop_at_last_layers": 2, "emphasis": "No norm", "sd_vae_decode_method": "Full",
        "sd_vae_encode_method": "Full"}
    # the client's own override_settings win over the infotext's
    response = api.post("/txt2img", json={"infotext": infotext, "override_settings": {"CLIP_stop_at_last_layers": 1}})
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert info["clip_skip"] == 1 and "Emphasis: No norm" in info["infotexts"][0]


def test_infotext_without_clip_skip_or_emphasis_means_a1111s_defaults(api):
    assert api.post("/options", json={"CLIP_stop_at_last_layers": 2, "emphasis": "No norm"}).status_code == 200
    infotext = f"{WEIGHTED}\nSteps: 3, Sampler: Euler a, CFG scale: 7, Seed: 11, Size: 64x64"
    response = api.post("/txt2img", json={"infotext": infotext})
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert info["clip_skip"] == 1 and "Emphasis" not in info["infotexts"][0]


# ---- styles ---------------------------------------------------------------------------------------


@pytest.fixture
def styles_csv(api_app) -> Iterator[Path]:
    path = api_app["ctx"].settings.styles_file
    path.write_text(STYLES_CSV, encoding="utf-8")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_prompt_styles_lists_styles_csv(api, styles_csv):
    assert api.get("/prompt-styles").json() == [
        {"name": "Teal", "prompt": "teal glaze, {prompt}", "negative_prompt": "lowres"},
        {"name": "Studio", "prompt": "studio lighting", "negative_prompt": ""},
    ]


def test_styles_apply_to_both_prompts(api, styles_csv):
    _, info = _txt2img(api, styles=["Teal", "Studio"], negative_prompt="blurry")
    infotext = info["infotexts"][0]
    assert infotext.startswith("teal glaze, a teapot, studio lighting\nNegative prompt: blurry, lowres\n")
    assert info["styles"] == ["Teal", "Studio"]
    assert info["prompt"] == "a teapot" and info["all_prompts"] == ["teal glaze, a teapot, studio lighting"]
    assert info["all_negative_prompts"] == ["blurry, lowres"]


def test_styles_apply_to_img2img(api, styles_csv):
    _, info = _txt2img(api, "/img2img", styles=["Studio"], init_images=[_init_image()], denoising_strength=0.5)
    assert info["infotexts"][0].startswith("a teapot, studio lighting\n") and info["styles"] == ["Studio"]


def test_unknown_style_is_a_422_naming_styles(api, styles_csv):
    response = api.post("/txt2img", json={**FAST, "styles": ["Teal", "Nope"]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("styles:") and "Nope" in response.json()["detail"]


# ---- embeddings -----------------------------------------------------------------------------------


@contextmanager
def _embeddings(api, data_dir: Path) -> Iterator[Path]:
    """Three embedding files in data_dir/embeddings (rescanned), removed (and rescanned) afterwards."""
    folder = data_dir / "embeddings"
    files = [save_embedding(folder / f"{TI_NAME}.safetensors", width=32, vectors=2, seed=3),
             save_embedding(folder / "wide768emb.safetensors", width=768, vectors=3),
             save_embedding(folder / "sdxlemb.safetensors", vectors=2, sdxl=True)]
    assert api.post("/refresh-embeddings").status_code == 200
    try:
        yield files[0]
    finally:
        for path in files:
            path.unlink(missing_ok=True)
        api.post("/refresh-embeddings")


def test_embeddings_lists_what_the_current_checkpoint_can_use(api, api_app):
    assert api.get("/embeddings").json() == {"loaded": {}, "skipped": {}}
    with _embeddings(api, api_app["data_dir"]):
        body = api.get("/embeddings").json()
    assert body["loaded"] == {TI_NAME: {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                                        "shape": 32, "vectors": 2}}
    skipped = body["skipped"]
    assert set(skipped) == {"wide768emb", "sdxlemb"}
    assert (skipped["sdxlemb"]["shape"], skipped["sdxlemb"]["vectors"]) == (768 + 1280, 2)  # as A1111 counts
    assert "SDXL" in skipped["sdxlemb"]["reason"]
    assert (skipped["wide768emb"]["shape"], skipped["wide768emb"]["vectors"]) == (768, 3)
    assert "widths [32]" in skipped["wide768emb"]["reason"]  # SD 1.x, but not as wide as the tiny encoder
    assert {"step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors", "reason"} == set(skipped["sdxlemb"])
    assert api.get("/embeddings").json() == {"loaded": {}, "skipped": {}}  # rescanned after removal


def test_every_refresh_route_rescans_the_store(api, api_app):
    folder = api_app["data_dir"] / "embeddings"
    routes = ("/refresh-loras", "/refresh-vae", "/refresh-checkpoints", "/refresh-embeddings")
    paths = []
    try:
        for i, route in enumerate(routes):
            paths.append(save_embedding(folder / f"refresh{i}emb.safetensors", width=32))
            assert f"refresh{i}emb" not in api.get("/embeddings").json()["loaded"]
            assert api.post(route).json() is None
            assert f"refresh{i}emb" in api.get("/embeddings").json()["loaded"], route
    finally:
        for path in paths:
            path.unlink()
        api.post("/refresh-embeddings")
    assert api.get("/embeddings").json() == {"loaded": {}, "skipped": {}}


def test_a_prompt_naming_an_embedding_uses_it_and_writes_its_hash(api, api_app):
    prompt = f"a {TI_NAME} teapot"
    without, _ = _txt2img(api, prompt=prompt)  # no such embedding yet: plain words
    with _embeddings(api, api_app["data_dir"]) as path:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        used, info = _txt2img(api, prompt=prompt)
        _, other_arch = _txt2img(api, prompt="a sdxlemb wide768emb teapot")
    assert f'TI hashes: "{TI_NAME}: {digest}"' in info["infotexts"][0]
    assert used["images"] != without["images"]
    assert "TI hashes" not in other_arch["infotexts"][0]  # skipped ones stay plain words, as in A1111


def _record(path: Path, model_type: ModelType, **fields) -> ModelRecord:
    return ModelRecord(ModelRef(SourceKind.SINGLE_FILE, str(path), model_type), name=path.stem, path=path, **fields)


def test_embedding_sorting_without_a_config_folder_uses_the_reference_widths(tmp_path):
    """A single-file checkpoint without a sidecar has the reference encoders of its architecture."""
    sdxl = _record(tmp_path / "xl.safetensors", ModelType.CHECKPOINT, kind=ModelKind(Architecture.SDXL))
    sd2 = _record(tmp_path / "v2.safetensors", ModelType.CHECKPOINT, kind=ModelKind(Architecture.SD2))
    assert encoder_widths(sdxl) == [768, 1280] and encoder_widths(sd2) == [1024]
    xl_file = save_embedding(tmp_path / "xl-emb.safetensors", vectors=4, sdxl=True)
    xl_emb = _record(xl_file, ModelType.EMBEDDING, arch=Architecture.SDXL)
    usable, item = embedding_entry(None, xl_emb, sdxl)  # safetensors: the store is not needed
    assert usable and (item.shape, item.vectors) == (2048, 4)
    usable, item = embedding_entry(None, xl_emb, sd2)
    assert not usable and "SDXL" in item.reason
    usable, item = embedding_entry(None, xl_emb, None)
    assert not usable and "not downloaded yet" in item.reason and item.shape == 2048


def test_unreadable_embedding_files_are_skipped_with_the_reason(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    checkpoint = _record(tmp_path / "v1.safetensors", ModelType.CHECKPOINT, kind=ModelKind(Architecture.SD1))
    usable, item = embedding_entry(None, _record(broken, ModelType.EMBEDDING), checkpoint)
    assert not usable and item.reason.startswith("unreadable") and (item.shape, item.vectors) == (0, 0)
    usable, item = embedding_entry(None, _record(broken, ModelType.EMBEDDING, problem="scan said no"), checkpoint)
    assert not usable and item.reason == "scan said no"
