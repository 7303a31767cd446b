"""POST /sdapi/v1/txt2img over HTTP on tiny models: images, info, samplers, overrides, infotext, errors."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.support.api import FAST

PROCESSED_JS_KEYS = {
    "prompt", "all_prompts", "negative_prompt", "all_negative_prompts", "seed", "all_seeds", "subseed",
    "all_subseeds", "subseed_strength", "width", "height", "sampler_name", "cfg_scale", "steps", "batch_size",
    "restore_faces", "face_restoration_model", "sd_model_name", "sd_model_hash", "sd_vae_name", "sd_vae_hash",
    "seed_resize_from_w", "seed_resize_from_h", "denoising_strength", "extra_generation_params",
    "index_of_first_image", "infotexts", "styles", "job_timestamp", "clip_skip", "is_using_inpainting_conditioning",
    "version",
}


def _png(b64: str) -> Image.Image:
    assert not b64.startswith("data:")
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG"
    return image


def _txt2img(api, **fields) -> tuple[dict, dict]:
    response = api.post("/txt2img", json={**FAST, **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["info"], str)  # a JSON *string*, as A1111 sends it
    return body, json.loads(body["info"])


def _saved(data_dir: Path) -> set[Path]:
    return set((data_dir / "outputs" / "txt2img-images").rglob("*.png"))


def test_images_are_base64_pngs_carrying_their_infotext(api):
    body, info = _txt2img(api, batch_size=2, negative_prompt="blurry", cfg_scale=5.5)
    assert PROCESSED_JS_KEYS <= set(info)
    assert info["all_seeds"] == [11, 12] and info["seed"] == 11 and info["batch_size"] == 2
    assert info["all_prompts"] == ["a teapot"] * 2 and info["negative_prompt"] == "blurry"
    assert info["sd_model_name"] == "tiny-sd15" and len(info["sd_model_hash"]) == 10
    assert info["cfg_scale"] == 5.5 and info["steps"] == 3 and (info["width"], info["height"]) == (64, 64)
    assert len(info["job_timestamp"]) == 14 and info["version"].startswith("Atelier")
    images = [_png(b64) for b64 in body["images"]]
    assert [img.size for img in images] == [(64, 64)] * 2
    assert [img.info["parameters"] for img in images] == info["infotexts"]
    assert "Seed: 12" in info["infotexts"][1] and "Negative prompt: blurry" in info["infotexts"][0]
    assert body["parameters"]["prompt"] == "a teapot" and body["parameters"]["steps"] == 3
    assert body["parameters"]["sampler_index"] == "Euler"  # the request as received, defaults filled in


def test_same_seed_same_image(api):
    first, _ = _txt2img(api, seed=123)
    second, _ = _txt2img(api, seed=123)
    assert first["images"] == second["images"]


def test_send_images_false_returns_no_images_and_nothing_is_saved_by_default(api, api_app):
    before = _saved(api_app["data_dir"])
    body, info = _txt2img(api, send_images=False)
    assert body["images"] == [] and len(info["infotexts"]) == 1
    assert _saved(api_app["data_dir"]) == before  # A1111's API default: save_images false


def test_save_images_true_saves_under_outputs_like_the_ui(api, api_app):
    before = _saved(api_app["data_dir"])
    body, info = _txt2img(api, save_images=True, seed=4242)
    new = _saved(api_app["data_dir"]) - before
    assert len(new) == 1 and next(iter(new)).name.endswith("-4242.png")
    assert Image.open(next(iter(new))).info["parameters"] == info["infotexts"][0]


def test_sampler_index_is_the_legacy_fallback_with_a1111s_default(api):
    _, info = _txt2img(api, sampler_name=None)
    assert info["sampler_name"] == "Euler"
    _, info = _txt2img(api, sampler_name=None, sampler_index="DDIM")
    assert info["sampler_name"] == "DDIM"


@pytest.mark.parametrize(("fields", "sampler", "schedule"), [
    ({"sampler_name": "DPM++ 2M Karras"}, "DPM++ 2M", "Karras"),  # pre-1.9 name
    ({"sampler_name": "DPM++ 2M", "scheduler": "exponential"}, "DPM++ 2M", "Exponential"),  # scheduler name
    ({"sampler_name": "Euler", "scheduler": "Karras"}, "Euler", "Karras"),  # scheduler label
    ({"sampler_name": "k_dpmpp_2m", "scheduler": "automatic"}, "DPM++ 2M", "Karras"),  # alias; automatic
])
def test_sampler_and_schedule_names(api, fields, sampler, schedule):
    _, info = _txt2img(api, **fields)
    assert info["sampler_name"] == sampler
    assert f"Sampler: {sampler}, Schedule type: {schedule}," in info["infotexts"][0]


@pytest.mark.parametrize("field", ["sampler_name", "sampler_index"])
def test_unknown_sampler_is_a_400_naming_it(api, field):
    response = api.post("/txt2img", json={**FAST, "sampler_name": None, field: "Nope Sampler"})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("Sampler not found") and "Nope Sampler" in body["detail"]
    assert body["errors"].startswith(f"{field}:")


def test_override_settings_model_is_for_this_request_only(api, api_app):
    _, info = _txt2img(api, override_settings={"sd_model_checkpoint": "tiny-sd15-b"})
    assert info["sd_model_name"] == "tiny-sd15-b" and "Model: tiny-sd15-b" in info["infotexts"][0]
    assert api_app["ctx"].selection.current == "tiny-sd15"
    assert api.get("/options").json()["sd_model_checkpoint"].startswith("tiny-sd15 [")
    _, info = _txt2img(api)
    assert info["sd_model_name"] == "tiny-sd15"


def test_override_settings_unknown_model_is_a_404(api):
    response = api.post("/txt2img", json={**FAST, "override_settings": {"sd_model_checkpoint": "no-such-model"}})
    assert response.status_code == 404 and "no-such-model" in response.json()["detail"]


def test_override_settings_checks_known_options_and_ignores_unknown_ones(api):
    _, info = _txt2img(api, override_settings={"CLIP_stop_at_last_layers": 1, "some_extension_option": 3})
    assert info["clip_skip"] == 1 and "Clip skip" not in info["infotexts"][0]
    _, info = _txt2img(api, override_settings={"CLIP_stop_at_last_layers": 2})
    assert info["clip_skip"] == 2 and "Clip skip: 2" in info["infotexts"][0]
    response = api.post("/txt2img", json={**FAST, "override_settings": {"CLIP_stop_at_last_layers": 13}})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("override_settings.CLIP_stop_at_last_layers:")


def test_infotext_fills_the_fields_the_request_leaves_out(api):
    infotext = ("a castle\nNegative prompt: fog\nSteps: 4, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 77, "
                "Size: 72x64, Model hash: 0123456789, Model: tiny-sd15")
    response = api.post("/txt2img", json={"infotext": infotext, "prompt": "a teapot", "sampler_index": "Euler"})
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert info["prompt"] == "a teapot"  # sent explicitly: kept
    assert (info["negative_prompt"], info["steps"], info["seed"], info["cfg_scale"]) == ("fog", 4, 77, 6.0)
    assert (info["width"], info["height"], info["sampler_name"]) == (72, 64, "DPM++ 2M")
    assert "Schedule type: Karras" in info["infotexts"][0]


def test_infotext_values_atelier_cannot_use_are_skipped_as_in_the_ui(api):
    infotext = "x\nSteps: 3, CFG scale: lots, Seed: 1, Sampler: Mystery, Hires upscale: 2, Variation seed strength: 0.3"
    response = api.post("/txt2img", json={"infotext": infotext, "width": 64, "height": 64})
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert (info["prompt"], info["steps"], info["seed"]) == ("x", 3, 1)
    assert info["cfg_scale"] == 7.0 and info["sampler_name"] == "Euler"  # A1111 defaults kept


@pytest.mark.parametrize(("fields", "field", "status"), [
    ({"steps": 0}, "steps", 422),
    ({"steps": 2.5}, "steps", 422),
    ({"width": 100}, "width", 422),
    ({"height": "tall"}, "height", 422),
    ({"cfg_scale": 99}, "cfg_scale", 422),
    ({"seed": -5}, "seed", 422),
    ({"batch_size": 9}, "batch_size", 422),
    ({"n_iter": 0}, "n_iter", 422),
    ({"scheduler": "Wobbly"}, "scheduler", 422),
    ({"sampler_name": "Euler", "scheduler": "Karras", "steps": 1, "prompt": 5}, "prompt", 422),
    ({"styles": ["Cinematic"]}, "styles", 422),
    ({"enable_hr": True, "hr_scale": 100}, "hr_scale", 422),  # hires fix works; bad values name the field
    ({"restore_faces": True}, "restore_faces", 422),
    ({"tiling": True}, "tiling", 422),
    ({"subseed_strength": 1.5}, "subseed_strength", 422),
    ({"seed_resize_from_w": 100}, "seed_resize_from_w", 422),
    ({"refiner_checkpoint": "tiny-sd15-b"}, "refiner_checkpoint", 422),
    ({"script_name": "no such script"}, "script_name", 422),
    ({"alwayson_scripts": {"ControlNet": {"args": []}}}, "alwayson_scripts", 422),
    ({"override_settings": {"samples_format": "jpg"}}, "override_settings.samples_format", 422),
    ({"override_settings": "not a dict"}, "override_settings", 422),
])
def test_bad_input_is_a_4xx_json_error_naming_the_field(api, fields, field, status):
    response = api.post("/txt2img", json={**FAST, **fields})
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"error", "detail", "body", "errors"}
    assert body["errors"].startswith(field) or str(body["detail"]).startswith(field), body


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"null", b""])
def test_malformed_bodies_are_422_not_500(api, content):
    response = api.post("/txt2img", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "RequestValidationError"


def test_a1111_client_payload_with_ignored_fields_is_accepted(api):
    """Fields with no effect in Atelier (eta, s_*, hr_* without enable_hr...) are accepted as clients send them."""
    _, info = _txt2img(api, eta=1.0, s_churn=0, s_tmax=0, s_tmin=0, s_noise=1, denoising_strength=0.7,
                       hr_upscaler="Latent", hr_scale=2, seed_resize_from_h=0, seed_resize_from_w=0, styles=[],
                       restore_faces=False, tiling=False, subseed=5, subseed_strength=0, do_not_save_samples=False,
                       override_settings_restore_afterwards=True, script_args=[], alwayson_scripts={},
                       force_task_id="task(abc)", comments={"note": "hi"}, controlnet_units=[])
    assert info["seed"] == 11 and info["subseed"] == 5


def test_variation_seed_fields_make_a_variation_and_are_reported(api):
    plain, _ = _txt2img(api, seed=11)
    varied = dict(seed=11, subseed=7, subseed_strength=0.5, seed_resize_from_w=48, seed_resize_from_h=48)
    body, info = _txt2img(api, **varied)
    assert body["images"] != plain["images"]
    assert (info["subseed"], info["subseed_strength"], info["seed_resize_from_w"]) == (7, 0.5, 48)
    assert "Variation seed: 7, Variation seed strength: 0.5, Seed resize from: 48x48" in info["infotexts"][0]
    assert _txt2img(api, **varied)[0]["images"] == body["images"]


@pytest.mark.parametrize(("path", "feature"), [("/interrogate", "interrogate")])
def test_modes_to_come_answer_501_with_a_specific_message(api, path, feature):
    response = api.post(path, json={"init_images": ["aGVsbG8="], "image": "", "prompt": "x"})
    assert response.status_code == 501
    body = response.json()
    assert body["error"] == "NotImplemented"
    assert body["detail"] == f"{feature} is not available yet in Atelier"
