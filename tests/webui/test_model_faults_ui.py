"""A damaged checkpoint picked in the UI's selector: a readable message, and the page keeps its model."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

from tests.support.ui_client import Client


def test_damaged_checkpoint_picked_in_the_selector_says_why_and_the_selection_stays(live_app, model_store):
    folder = live_app["data_dir"] / "models" / "Stable-diffusion"
    whole = (model_store / "tiny-sd15-file.safetensors").read_bytes()
    (folder / "cut-ui.safetensors").write_bytes(whole[: len(whole) // 3])  # a download that stopped a third in
    ctx = live_app["ctx"]
    before = ctx.selection.current
    client = Client(live_app["url"], verbose=False)
    try:
        client.predict(api_name="/refresh_checkpoints")
        with pytest.raises(AppError) as err:
            client.predict(checkpoint="cut-ui", api_name="/select_checkpoint")
        message = str(err.value)
        assert "cut-ui.safetensors is damaged or cut short" in message and "download it again" in message
        assert "Traceback" not in message
        assert ctx.selection.current == before
    finally:  # the shared app's list as the other tests expect it
        (folder / "cut-ui.safetensors").unlink()
        ctx.store.refresh()
