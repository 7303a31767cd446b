"""The "⚡ Fast preset" buttons and the Settings tab's VAE-type dropdowns over real HTTP (gradio_client) on the
live app: an LCM-LoRA in the prompt gives LCM's fields and switches the TAESD decoder on, the next generation
says so, Read parameters restores the decoder, an ordinary model is refused with a message.

``live_app`` is shared by the session: the TAESD, the LoRA and the options are put back afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from pipelines.infotext.codec import parse_infotext
from tests.support.tiny_loras import save_kohya_lora_for
from tests.support.tiny_taesd import save_tiny_taesd
from tests.support.ui_client import Client

PROMPT = "a fox <lora:lcm-lora-sdv1-5:1>"
FORM = dict(checkpoint="tiny-sd15", prompt=PROMPT, negative_prompt="", sampler_name="Euler", scheduler="Automatic",
            steps=2, cfg_scale=7, width=64, height=64, seed=5, batch_size=1, n_iter=1, refiner_checkpoint=None)


@pytest.fixture(scope="module")
def client(live_app, model_store) -> Iterator[Client]:
    ctx, data = live_app["ctx"], live_app["data_dir"]
    taesd = save_tiny_taesd(data / "models" / "VAE-taesd" / "taesd", seed=1)
    lora = save_kohya_lora_for(model_store / "tiny-sd15", data / "models" / "Lora" / "lcm-lora-sdv1-5.safetensors",
                               seed=3, std=0.01)
    ctx.store.refresh()
    try:
        yield Client(live_app["url"], verbose=False)
    finally:
        ctx.options.update({"sd_vae_decode_method": "Full"})
        shutil.rmtree(taesd.parent)
        lora.unlink()
        ctx.store.refresh()


def test_the_fast_preset_fills_the_form_and_switches_taesd_on(live_app, client):
    from webui.tabs.txt2img import PASTE_NAMES

    options = live_app["ctx"].options
    assert options.values()["sd_vae_decode_method"] == "Full"
    sampler, scheduler, steps, cfg = client.predict(checkpoint="tiny-sd15", prompt=PROMPT,
                                                    api_name="/txt2img_fast_preset")
    assert (sampler, scheduler, steps, cfg) == ("LCM", "Automatic", 4, 1.0)
    assert options.values()["sd_vae_decode_method"] == "TAESD"
    assert client.predict(checkpoint="tiny-sd15", prompt=PROMPT, api_name="/img2img_fast_preset")[0] == "LCM"
    form = {**FORM, "sampler_name": sampler, "scheduler": scheduler, "steps": steps, "cfg_scale": cfg}
    _gallery, info = client.predict(**form, api_name="/txt2img")
    params = parse_infotext(info)
    assert (params["Sampler"], params["Steps"], params["CFG scale"], params["VAE Decoder"]) == \
        ("LCM", "4", "1", "TAESD")
    # the Settings tab's dropdown saves the option; Read parameters of the image puts TAESD back
    client.predict("Full", api_name="/set_sd_vae_decode_method")
    assert options.values()["sd_vae_decode_method"] == "Full"
    values = dict(zip(PASTE_NAMES, client.predict(**{**FORM, "prompt": info}, api_name="/txt2img_read_parameters"),
                      strict=True))
    assert values["sampler_name"] == "LCM" and options.values()["sd_vae_decode_method"] == "TAESD"


def test_an_ordinary_model_gets_a_message_not_a_preset(client):
    with pytest.raises(Exception, match="not a few-step model"):
        client.predict(checkpoint="tiny-sd15", prompt="a fox", api_name="/txt2img_fast_preset")
