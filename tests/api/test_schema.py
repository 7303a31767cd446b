"""The API's shape against the A1111 spec (/work/shared/reference/a1111-compat.md, section 2):
field names and defaults, the endpoint list, the OpenAPI docs, and route precedence beside Gradio."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Match

from tests.support.api import API_USER, flatten, sdapi_routes
from webui.api import models

# Section 2.3: StableDiffusionTxt2ImgProcessingAPI, every field with A1111 1.10's default.
TXT2IMG_DEFAULTS = {
    "prompt": "", "negative_prompt": "", "styles": None, "seed": -1, "subseed": -1, "subseed_strength": 0,
    "seed_resize_from_h": -1, "seed_resize_from_w": -1, "sampler_name": None, "scheduler": None,
    "sampler_index": "Euler", "batch_size": 1, "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512,
    "height": 512, "restore_faces": None, "tiling": None, "do_not_save_samples": False, "do_not_save_grid": False,
    "eta": None, "denoising_strength": None, "s_min_uncond": None, "s_churn": None, "s_tmax": None, "s_tmin": None,
    "s_noise": None, "override_settings": None, "override_settings_restore_afterwards": True,
    "refiner_checkpoint": None, "refiner_switch_at": None, "disable_extra_networks": False, "firstpass_image": None,
    "comments": None, "enable_hr": False, "firstphase_width": 0, "firstphase_height": 0, "hr_scale": 2.0,
    "hr_upscaler": None, "hr_second_pass_steps": 0, "hr_resize_x": 0, "hr_resize_y": 0, "hr_checkpoint_name": None,
    "hr_sampler_name": None, "hr_scheduler": None, "hr_prompt": "", "hr_negative_prompt": "", "force_task_id": None,
    "script_name": None, "script_args": [], "send_images": True, "save_images": False, "alwayson_scripts": {},
    "infotext": None,
}
# Section 2.4: the img2img body is the txt2img one without the hires fields, plus its own.
TXT2IMG_ONLY = {"enable_hr", "firstphase_width", "firstphase_height", "firstpass_image", "hr_scale", "hr_upscaler",
                "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "hr_checkpoint_name", "hr_sampler_name",
                "hr_scheduler", "hr_prompt", "hr_negative_prompt"}
IMG2IMG_OWN = {
    "init_images": None, "resize_mode": 0, "denoising_strength": 0.75, "image_cfg_scale": None, "mask": None,
    "mask_blur_x": 4, "mask_blur_y": 4, "mask_blur": None, "mask_round": True, "inpainting_fill": 0,
    "inpaint_full_res": True, "inpaint_full_res_padding": 0, "inpainting_mask_invert": 0,
    "initial_noise_multiplier": None, "latent_mask": None,
}
# Response and item models: field lists from sections 2.1, 2.3 and 2.6.
MODEL_FIELDS = {
    models.TextToImageResponse: {"images", "parameters", "info"},
    models.ImageToImageResponse: {"images", "parameters", "info"},
    models.ProgressResponse: {"progress", "eta_relative", "state", "current_image", "textinfo",
                              "queue_position", "queue_size", "running_is_yours"},  # + Atelier's device queue
    models.ProgressState: {"skipped", "interrupted", "stopping_generation", "job", "job_count", "job_timestamp",
                           "job_no", "sampling_step", "sampling_steps"},
    models.PNGInfoRequest: {"image"},
    models.PNGInfoResponse: {"info", "items", "parameters"},
    models.SDModelItem: {"title", "model_name", "hash", "sha256", "filename", "config"},
    models.SamplerItem: {"name", "aliases", "options"},
    models.SchedulerItem: {"name", "label", "aliases", "default_rho", "need_inner_model"},
    models.UpscalerItem: {"name", "model_name", "model_path", "model_url", "scale"},
    models.LatentUpscalerModeItem: {"name"},
    models.SDVaeItem: {"model_name", "filename"},
    models.HypernetworkItem: {"name", "path"},
    models.FaceRestorerItem: {"name", "cmd_dir"},
    models.RealesrganItem: {"name", "path", "scale"},
    models.PromptStyleItem: {"name", "prompt", "negative_prompt"},
    models.EmbeddingsResponse: {"loaded", "skipped"},
    models.EmbeddingItem: {"step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors"},
    models.SkippedEmbeddingItem: {"step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors", "reason"},
    models.MemoryResponse: {"ram", "cuda", "models"},  # + Atelier's list of models in memory
    models.ScriptsList: {"txt2img", "img2img"},
    models.ExtensionItem: {"name", "remote", "branch", "commit_hash", "commit_date", "version", "enabled"},
    models.ErrorResponse: {"error", "detail", "body", "errors"},
}
# Section 2.1, with a body that is cheap to answer (a 4xx for the generation routes is fine here).
SPEC_ENDPOINTS = [
    ("POST", "/txt2img", {"steps": 0}), ("POST", "/img2img", {"init_images": ["x"]}),
    ("POST", "/extra-single-image", {}),
    ("POST", "/extra-batch-images", {}), ("POST", "/png-info", {"image": ""}), ("GET", "/progress", None),
    ("POST", "/interrogate", {}), ("POST", "/interrupt", None), ("POST", "/skip", None), ("GET", "/options", None),
    ("POST", "/options", {}), ("GET", "/cmd-flags", None), ("GET", "/samplers", None), ("GET", "/schedulers", None),
    ("GET", "/upscalers", None), ("GET", "/latent-upscale-modes", None), ("GET", "/sd-models", None),
    ("GET", "/sd-vae", None), ("GET", "/hypernetworks", None), ("GET", "/face-restorers", None),
    ("GET", "/realesrgan-models", None), ("GET", "/prompt-styles", None), ("GET", "/embeddings", None),
    ("POST", "/refresh-embeddings", None), ("POST", "/refresh-checkpoints", None), ("POST", "/refresh-vae", None),
    ("GET", "/memory", None), ("POST", "/reload-checkpoint", None), ("GET", "/scripts", None),
    ("GET", "/script-info", None), ("GET", "/extensions", None), ("GET", "/loras", None),
]
NOT_SERVED = ["/create/embedding", "/create/hypernetwork", "/train/embedding", "/train/hypernetwork",
              "/server-kill", "/server-restart", "/server-stop"]  # training and server control: not in Atelier


def test_txt2img_request_has_every_spec_field_with_its_default():
    fields = models.StableDiffusionTxt2ImgProcessingAPI.model_fields
    assert set(fields) == set(TXT2IMG_DEFAULTS)
    defaults = models.StableDiffusionTxt2ImgProcessingAPI().model_dump()
    assert defaults == TXT2IMG_DEFAULTS


def test_img2img_request_has_every_spec_field_with_its_default():
    expected = {k: v for k, v in TXT2IMG_DEFAULTS.items() if k not in TXT2IMG_ONLY} | IMG2IMG_OWN
    assert models.StableDiffusionImg2ImgProcessingAPI().model_dump() == expected  # include_init_images: excluded
    assert models.StableDiffusionImg2ImgProcessingAPI.model_fields["include_init_images"].default is False


@pytest.mark.parametrize("model", list(MODEL_FIELDS), ids=lambda m: m.__name__)
def test_response_models_have_the_spec_field_names(model):
    assert set(model.model_fields) == MODEL_FIELDS[model]


def test_unknown_request_fields_are_accepted_and_ignored():
    body = models.StableDiffusionTxt2ImgProcessingAPI(prompt="x", controlnet_units=[{"a": 1}], sampler_index="Euler a")
    assert body.prompt == "x" and "controlnet_units" not in body.model_dump()


@pytest.mark.parametrize(("method", "path", "body"), SPEC_ENDPOINTS, ids=[p for _, p, _ in SPEC_ENDPOINTS])
def test_every_spec_endpoint_is_served(api, method, path, body):
    response = api.request(method, path, json=body)
    assert response.status_code not in (404, 405, 500), response.text
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("path", NOT_SERVED)
def test_training_and_server_control_are_absent(api, path):
    assert api.post(path, json={}).status_code == 404


def test_openapi_docs_list_the_typed_models(api_app):
    spec = httpx.get(api_app["url"] + "openapi.json", auth=API_USER, timeout=60).json()
    schemas = spec["components"]["schemas"]
    for name in ("StableDiffusionTxt2ImgProcessingAPI", "TextToImageResponse", "ProgressResponse", "PNGInfoRequest",
                 "PNGInfoResponse", "SDModelItem", "SamplerItem", "SchedulerItem", "UpscalerItem", "MemoryResponse",
                 "FlagsModel", "ErrorResponse", "StableDiffusionImg2ImgProcessingAPI", "ImageToImageResponse"):
        assert name in schemas, name
    txt2img = spec["paths"]["/sdapi/v1/txt2img"]["post"]
    assert txt2img["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/StableDiffusionTxt2ImgProcessingAPI")
    assert txt2img["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TextToImageResponse")
    # the API (A1111's and Atelier's own /atelier/v1) only, not Gradio's internals
    assert all(path.startswith(("/sdapi/v1/", "/atelier/v1/")) for path in spec["paths"])
    assert "/atelier/v1/extensions/install" in spec["paths"]
    assert "HTTPBasic" in spec["components"]["securitySchemes"]
    docs = httpx.get(api_app["url"] + "docs", auth=API_USER, timeout=60)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_sdapi_routes_are_matched_before_any_gradio_route(api_app):
    """Our routes come first in the app (created with them); none of Gradio's may shadow one of ours."""
    app = api_app["app"]
    ours = sdapi_routes(app)
    assert len(ours) >= 30
    for route in ours:
        for method in route.methods:
            scope = {"type": "http", "path": route.path, "method": method, "root_path": "", "headers": []}
            first = next(r for r in app.routes if r.matches(dict(scope))[0] == Match.FULL)
            assert route in flatten([first]), f"{method} {route.path} is shadowed by {getattr(first, 'path', first)}"
