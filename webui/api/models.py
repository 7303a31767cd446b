"""Request and response bodies of the A1111-compatible API, with A1111's field names and defaults.

Every request field is optional with A1111 1.10's default, so existing clients' payloads validate
unchanged; fields A1111 does not define are ignored. What Atelier does with each txt2img field
(img2img shares them; its own are listed on :class:`StableDiffusionImg2ImgProcessingAPI`):

- honoured: prompt, negative_prompt, styles (names from styles.csv, applied to both prompts;
  an unknown name is a 422 naming ``styles``), seed, sampler_name, sampler_index (legacy, used when
  sampler_name is empty; "DPM++ 2M Karras"-style names are split), scheduler (label or name),
  batch_size, n_iter, steps, cfg_scale, width, height, send_images, save_images,
  override_settings (for this request only: sd_model_checkpoint, CLIP_stop_at_last_layers 1-12,
  emphasis, sd_vae (Automatic, None or a VAE's name; unknown -> 422); other known options must keep
  their value, see pipelines/options.py; unknown keys are ignored), infotext (fills the fields the
  request does not set, with the UI's paste mapping: pipelines/infotext/paste.py; its Clip skip,
  Emphasis and installed VAE go to override_settings, as in A1111),
  enable_hr with hr_scale, hr_upscaler, hr_second_pass_steps, hr_resize_x/y, hr_sampler_name,
  hr_scheduler, hr_prompt, hr_negative_prompt and denoising_strength (hires fix:
  pipelines/requests/hires.py), styles, subseed, subseed_strength, seed_resize_from_w/h (variation
  seed, txt2img), refiner_checkpoint and refiner_switch_at (SDXL refiner, txt2img; null switch point: 0.8);
- refused with 422 naming the field when asking for something Atelier cannot do yet:
  restore_faces, tiling,
  refiner_checkpoint in img2img, hr_checkpoint_name, firstpass_image;
- accepted and ignored (no effect on the image Atelier makes): eta, s_*, denoising_strength (txt2img
  without enable_hr), refiner_switch_at (without refiner_checkpoint), hr_* and firstphase_* (without
  enable_hr), do_not_save_samples/grid (save_images decides, as in A1111),
  override_settings_restore_afterwards, disable_extra_networks, comments, force_task_id.

Scripts: ``script_name`` with ``script_args`` (positional, A1111's layout where the script maps it, or by
name) runs one of Atelier's scripts (the X/Y/Z plot, ...); ``alwayson_scripts`` passes the extension
sections' values to their hooks (webui/api/scripts.py); unknown names and bad values are a 422.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ProcessingAPI(ApiModel):
    """The fields txt2img and img2img share (A1111's ``StableDiffusionProcessing`` API fields)."""

    prompt: str | None = ""
    negative_prompt: str | None = ""
    styles: list[str] | None = None
    seed: int | None = -1
    subseed: int | None = -1
    subseed_strength: float | None = 0
    seed_resize_from_h: int | None = -1
    seed_resize_from_w: int | None = -1
    sampler_name: str | None = None
    scheduler: str | None = None
    sampler_index: str | None = "Euler"
    batch_size: int | None = 1
    n_iter: int | None = 1
    steps: int | None = 50
    cfg_scale: float | None = 7.0
    width: int | None = 512
    height: int | None = 512
    restore_faces: bool | None = None
    tiling: bool | None = None
    do_not_save_samples: bool | None = False
    do_not_save_grid: bool | None = False
    eta: float | None = None
    s_min_uncond: float | None = None
    s_churn: float | None = None
    s_tmax: float | None = None
    s_tmin: float | None = None
    s_noise: float | None = None
    override_settings: dict[str, Any] | None = None
    override_settings_restore_afterwards: bool | None = True
    refiner_checkpoint: str | None = None
    refiner_switch_at: float | None = None
    disable_extra_networks: bool | None = False
    comments: dict[str, Any] | None = None
    force_task_id: str | None = None
    script_name: str | None = None
    script_args: list[Any] | dict[str, Any] | None = Field(default_factory=list)  # or by name (Atelier)
    send_images: bool | None = True
    save_images: bool | None = False
    alwayson_scripts: dict[str, Any] | None = Field(default_factory=dict)
    infotext: str | None = None


class StableDiffusionTxt2ImgProcessingAPI(ProcessingAPI):
    """``POST /sdapi/v1/txt2img``; see the module docstring for what each field does in Atelier."""

    denoising_strength: float | None = None
    firstpass_image: str | None = None
    enable_hr: bool | None = False
    firstphase_width: int | None = 0
    firstphase_height: int | None = 0
    hr_scale: float | None = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = 0
    hr_resize_x: int | None = 0
    hr_resize_y: int | None = 0
    hr_checkpoint_name: str | None = None
    hr_sampler_name: str | None = None
    hr_scheduler: str | None = None
    hr_prompt: str | None = ""
    hr_negative_prompt: str | None = ""


class StableDiffusionImg2ImgProcessingAPI(ProcessingAPI):
    """``POST /sdapi/v1/img2img``: the shared fields plus the image to start from.

    Honoured: init_images (the first one; base64 or data: URI; missing -> 404 "Init image not
    found"), resize_mode 0..3, denoising_strength, and inpainting: mask (white = inpaint), mask_blur
    (else mask_blur_x), inpainting_fill, inpaint_full_res, inpaint_full_res_padding,
    inpainting_mask_invert (webui/api/img2img.py). Refused with 422 naming the field: latent_mask,
    initial_noise_multiplier other than 1. mask_blur_y, mask_round and image_cfg_scale are accepted
    and ignored.
    """

    init_images: list[str] | None = None
    resize_mode: int | None = 0
    denoising_strength: float | None = 0.75
    image_cfg_scale: float | None = None
    mask: str | None = None
    mask_blur_x: int | None = 4
    mask_blur_y: int | None = 4
    mask_blur: int | None = None
    mask_round: bool | None = True
    inpainting_fill: int | None = 0
    inpaint_full_res: bool | None = True
    inpaint_full_res_padding: int | None = 0
    inpainting_mask_invert: int | None = 0
    initial_noise_multiplier: float | None = None
    latent_mask: str | None = None
    include_init_images: bool | None = Field(default=False, exclude=True)


class TextToImageResponse(ApiModel):
    images: list[str] | None = Field(default=None, description="base64 PNGs carrying their infotext")
    parameters: dict[str, Any]
    info: str = Field(description="JSON string with Processed.js() keys")


class ImageToImageResponse(TextToImageResponse):
    """Same shape as txt2img's; ``parameters`` holds no init images unless include_init_images."""


class ErrorResponse(ApiModel):
    """The body of every error (A1111's api_middleware shape)."""

    error: str
    detail: Any = ""
    body: Any = ""
    errors: str = ""


class ProgressState(ApiModel):
    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0


class ProgressResponse(ApiModel):
    progress: float = Field(description="0..1")
    eta_relative: float = Field(description="seconds left")
    state: ProgressState
    current_image: str | None = Field(default=None, description="base64 PNG live preview")
    textinfo: str | None = None
    # Atelier: the device queue, as the caller sees it (A1111's fields above are unchanged)
    queue_position: int | None = Field(default=None, description="the caller's (or id_task's) first waiting "
                                       "job's place in the device queue: 1 = next; null: none waiting")
    queue_size: int = Field(default=0, description="jobs waiting for the device, all callers")
    running_is_yours: bool = Field(default=False, description="whether the running job is the caller's (or "
                                   "id_task's); only then does current_image hold its live preview")


class PNGInfoRequest(ApiModel):
    image: str = Field(description="base64 image or data: URI")


class PNGInfoResponse(ApiModel):
    info: str
    items: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)


class SDModelItem(ApiModel):
    title: str
    model_name: str
    hash: str | None = None
    sha256: str | None = None
    filename: str
    config: str | None = None


class SamplerItem(ApiModel):
    name: str
    aliases: list[str]
    options: dict[str, str]


class SchedulerItem(ApiModel):
    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float | None = None
    need_inner_model: bool | None = None


class UpscalerItem(ApiModel):
    name: str
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None
    scale: float | None = None


class ExtrasBaseRequest(ApiModel):
    """A1111's extras fields. Face restoration (gfpgan/codeformer) is refused with 422 when asked for;
    ``show_extras_results`` and ``upscale_first`` are accepted and have no effect (only upscaling runs)."""

    resize_mode: int = Field(default=0, description="0: scale by upscaling_resize, 1: to upscaling_resize_w x _h")
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(default=0, ge=0, le=1)
    codeformer_visibility: float = Field(default=0, ge=0, le=1)
    codeformer_weight: float = Field(default=0, ge=0, le=1)
    upscaling_resize: float = Field(default=2, gt=0)
    upscaling_resize_w: int = Field(default=512, ge=1)
    upscaling_resize_h: int = Field(default=512, ge=1)
    upscaling_crop: bool = True
    upscaler_1: str = Field(default="None", description="a name from /sdapi/v1/upscalers")
    upscaler_2: str = Field(default="None", description="a name from /sdapi/v1/upscalers")
    extras_upscaler_2_visibility: float = Field(default=0, ge=0, le=1)
    upscale_first: bool = False


class ExtrasSingleImageRequest(ExtrasBaseRequest):
    image: str = Field(default="", description="base64 image or data: URI")


class ExtrasSingleImageResponse(ApiModel):
    html_info: str = Field(description="the postprocess infotext as HTML")
    image: str | None = Field(default=None, description="base64 PNG carrying its infotext")


class FileData(ApiModel):
    data: str = Field(description="base64 image or data: URI")
    name: str = ""


class ExtrasBatchImagesRequest(ExtrasBaseRequest):
    imageList: list[FileData] = Field(default_factory=list)  # noqa: N815 - A1111's field name


class ExtrasBatchImagesResponse(ApiModel):
    html_info: str
    images: list[str] = Field(default_factory=list)


class LatentUpscalerModeItem(ApiModel):
    name: str


class SDVaeItem(ApiModel):
    model_name: str
    filename: str


class LoraItem(ApiModel):
    name: str
    alias: str
    path: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class EmbeddingItem(ApiModel):
    step: int | None = None
    sd_checkpoint: str | None = None
    sd_checkpoint_name: str | None = None
    shape: int
    vectors: int


class SkippedEmbeddingItem(EmbeddingItem):
    """An embedding a job on the current checkpoint would skip; ``reason`` is Atelier's addition."""

    reason: str = Field(default="", description="why it cannot be used with the current checkpoint")


class EmbeddingsResponse(ApiModel):
    loaded: dict[str, EmbeddingItem] = Field(default_factory=dict, description="usable with the current checkpoint")
    skipped: dict[str, SkippedEmbeddingItem] = Field(
        default_factory=dict, description="made for another architecture, the wrong width, or unreadable")


class PromptStyleItem(ApiModel):
    name: str
    prompt: str | None = None
    negative_prompt: str | None = None


class HypernetworkItem(ApiModel):
    name: str
    path: str | None = None


class FaceRestorerItem(ApiModel):
    name: str
    cmd_dir: str | None = None


class RealesrganItem(ApiModel):
    name: str
    path: str | None = None
    scale: int | None = None


class ScriptsList(ApiModel):
    txt2img: list[str] = Field(default_factory=list)
    img2img: list[str] = Field(default_factory=list)


class ExtensionItem(ApiModel):
    name: str
    remote: str
    branch: str
    commit_hash: str
    version: str
    commit_date: int | str
    enabled: bool


class MemoryModelItem(ApiModel):
    """One model in memory (Atelier's addition to A1111's memory report)."""

    name: str
    type: str = Field(description="checkpoint, vae, lora, embedding, upscaler or sd_x4_upscaler")
    bytes: int = Field(description="bytes its tensors take")
    tier: str = Field(description="device (where models run) or ram (parked off the accelerator)")
    in_use: bool = Field(description="held by a running job; cannot be unloaded now")


class MemoryResponse(ApiModel):
    ram: dict[str, Any] = Field(description="free, used, total (bytes)")
    cuda: dict[str, Any] = Field(description="system, active, allocated, reserved, inactive, events; or error")
    models: list[MemoryModelItem] = Field(default_factory=list, description="models in memory, in bytes, by tier")


class FlagsModel(ApiModel):
    """The command-line flags this process runs with (A1111 names); secrets are redacted."""

    model_config = ConfigDict(extra="allow")

    api: bool = False
    nowebui: bool = False
    listen: bool = False
    port: int | None = None
    share: bool = False
    gradio_auth: str | None = None
    api_auth: str | None = None
    data_dir: str | None = None
    ckpt: str | None = None
    ckpt_dir: list[str] | str | None = None
    allow_pickle: bool = False
    device: str | None = None
    xformers: bool = False
    opt_sdp_attention: bool = False
    opt_split_attention: bool = False
    medvram: bool = False
    lowvram: bool = False
    no_half: bool = False
    precision: str = Field("auto", description="the model dtype --precision asked for: auto, fp32, bf16 or fp16 "
                                               "(A1111's full, half and autocast are given as fp32, fp16 and auto)")
    threads: int | None = None
    skip_install: bool = False


OptionsModel = dict[str, Any]
