"""A lower-memory retry shown in the UI: the txt2img event over real HTTP (gradio_client) shows a warning."""

from __future__ import annotations

import asyncio

import torch

from tests.support.ui_client import Client

FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler",
            scheduler="Automatic", steps=2, cfg_scale=7, width=64, height=64, seed=9, batch_size=1, n_iter=1)


def test_txt2img_shows_a_warning_after_a_lower_memory_retry(live_app):
    unet = live_app["ctx"].store.load("tiny-sd15").pipeline.unet
    calls = []

    def out_of_memory_once(_module, _args):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (test fault)")

    async def warnings_of_one_job() -> tuple[list[tuple[str, str]], list]:
        job = Client(live_app["url"], verbose=False).submit(**FORM, api_name="/txt2img")
        logs = [update.log async for update in job if getattr(update, "log", None)]
        return logs, job.result()

    handle = unet.register_forward_pre_hook(out_of_memory_once)
    try:
        logs, (gallery, info) = asyncio.run(warnings_of_one_job())
    finally:
        handle.remove()
    assert len(gallery) == 1 and "Seed: 9" in info
    assert any(level == "warning" and "VAE slicing and VAE tiling" in text for text, level in logs), logs
