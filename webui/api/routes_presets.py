"""``GET /atelier/v1/presets/fast``: the "⚡ Fast preset" for a model (:func:`pipelines.presets.fast_preset`), so an
API client sets the same steps, CFG scale, sampler and decoder as the UI's button (send ``sd_vae_decode_method``
in ``override_settings``)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pipelines.context import AppContext
from pipelines.presets import fast_preset


class FastPresetResponse(BaseModel):
    model: str = Field(description="the checkpoint's name")
    family: str = Field(description="LCM, Turbo, Lightning or Hyper-SD")
    reason: str = Field(description="'the model', or 'LoRA <name>' for an LCM-LoRA in the prompt")
    steps: int
    cfg_scale: float
    sampler_name: str
    scheduler: str
    sd_vae_decode_method: str = Field(description="TAESD when one for the model's family is installed, else Full")
    note: str


def add_preset_routes(router: APIRouter, ctx: AppContext) -> None:
    """The preset route on Atelier's own router (``/atelier/v1``, the API's login and error shape)."""

    @router.get("/presets/fast", response_model=FastPresetResponse)
    def fast(model: str = Query("", description="a checkpoint (name, title or Hub repo id); empty: the selected one"),
             prompt: str = Query("", description="the prompt: an <lora:...> LCM-LoRA in it makes the LCM preset")
             ) -> FastPresetResponse:
        """Steps, CFG scale, sampler and VAE decoder for a few-step model (422 naming ``model`` for another)."""
        return FastPresetResponse(**fast_preset(ctx.store, model or ctx.selection.current, prompt).as_dict())
