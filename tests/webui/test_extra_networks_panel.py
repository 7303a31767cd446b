"""The extra-networks panel over real HTTP (gradio_client) on the live app's tiny models: cards with previews,
sizes and architecture marks, search, a LoRA / embedding toggled into the prompt boxes, ss_* details, and a
checkpoint card that selects the model. The files are written into the shared ``live_app`` and removed after.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from PIL import Image

from pipelines.networks.cards import NetworkTab
from tests.support.tiny_loras import save_kohya_lora_for
from tests.support.tiny_networks import save_embedding, save_kohya_lora, save_vae_file
from tests.support.ui_client import Client

GRIDS = [tab.value for tab in NetworkTab]  # the order of the search / refresh outputs


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


@pytest.fixture(scope="module")
def networks(live_app, model_store) -> Iterator[dict]:
    """An SD1 LoRA for tiny-sd15 with a preview, an SDXL LoRA in a subfolder, and an embedding, in the live
    app's folders."""
    data_dir, ctx = live_app["data_dir"], live_app["ctx"]
    lora = save_kohya_lora_for(model_store / "tiny-sd15", data_dir / "models" / "Lora" / "inkwash.safetensors", seed=2)
    Image.new("RGB", (64, 48), (200, 30, 30)).save(lora.with_name("inkwash.preview.png"))
    sdxl = save_kohya_lora(data_dir / "models" / "Lora" / "xl" / "xl-detail.safetensors", context_width=2048,
                           sdxl=True)
    embedding = save_embedding(data_dir / "embeddings" / "badhands.safetensors", width=32)
    vae = save_vae_file(data_dir / "models" / "VAE" / "softvae.safetensors", seed=5)
    files = [lora, lora.with_name("inkwash.preview.png"), sdxl, embedding, vae]
    try:
        yield {"lora": lora}
    finally:
        for path in files:
            path.unlink()
        sdxl.parent.rmdir()
        ctx.store.refresh()


def cards(grid_html: str) -> list[str]:
    return re.findall(r'data-card="([^"]+)"', grid_html)


def card(grid_html: str, name: str) -> str:
    match = re.search(rf'<div class="([^"]*)" data-card="{re.escape(name)}".*?</div></div>', grid_html)
    assert match, f"no card {name!r} in {grid_html[:300]}"
    return match.group(0)


def test_cards_show_previews_architectures_and_marks_and_search_filters(client, networks):
    grids = dict(zip(GRIDS, client.predict(search="", api_name="/txt2img_extra_networks_refresh"), strict=True))
    assert {"tiny-sd15", "tiny-sd15-b"} <= set(cards(grids["checkpoints"]))
    loras = cards(grids["lora"])  # (other tests of the session may have left files of their own)
    assert {"inkwash", "xl-detail"} <= set(loras) and loras == sorted(loras, key=str.lower)
    assert "badhands" in cards(grids["textual_inversion"]) and "softvae" in cards(grids["vae"])
    inkwash, xl = card(grids["lora"], "inkwash"), card(grids["lora"], "xl-detail")
    assert 'src="data:image/jpeg;base64,' in inkwash and "data:image" not in xl  # the preview beside the file
    assert re.search(r"unknown · \d+ KiB", inkwash)  # the tiny LoRA's widths fit no real architecture
    assert "other-architecture" not in inkwash
    assert 'class="card other-architecture"' in xl and "for SDXL, not SD 1.x" in xl

    searched = dict(zip(GRIDS, client.predict(search="INK", api_name="/img2img_extra_networks_search"), strict=True))
    assert cards(searched["lora"]) == ["inkwash"] and cards(searched["checkpoints"]) == []
    assert "No Textual Inversion matching 'INK'" in html.unescape(searched["textual_inversion"])
    searched = client.predict(search="xl/", api_name="/txt2img_extra_networks_search")  # a subfolder
    assert cards(searched[GRIDS.index("lora")]) == ["xl-detail"]
    searched = client.predict(search="models", api_name="/txt2img_extra_networks_search")  # not the folder above
    assert all(cards(grid) == [] for grid in searched)


def test_a_lora_card_toggles_its_tag_and_an_embedding_goes_into_the_focused_box(client, networks):
    def insert(tab: str, name: str, prompt: str, negative: str = "", target: str = "prompt"):
        return client.predict(tab=tab, name=name, target=target, prompt=prompt, negative_prompt=negative,
                              api_name="/txt2img_extra_networks_insert")

    assert insert("lora", "inkwash", "a fox") == ("a fox <lora:inkwash:1>", "")
    assert insert("lora", "inkwash", "a fox <lora:inkwash:0.4>, snow") == ("a fox, snow", "")  # a second click
    assert insert("lora", "inkwash", "") == ("<lora:inkwash:1>", "")
    assert insert("textual_inversion", "badhands", "a fox", "blurry", target="negative_prompt") == (
        "a fox", "blurry badhands")
    with pytest.raises(Exception, match="inkwash"):  # an unknown name lists the close ones
        insert("lora", "inkwsh", "a fox")


def test_details_show_the_training_metadata(client, networks):
    details = client.predict(tab="lora", name="inkwash", api_name="/txt2img_extra_networks_details")
    assert details["name"] == "inkwash" and details["size"].endswith(" KiB")
    assert details["file"] == str(networks["lora"]) and details["alias"] == "inkwash"
    assert details["training metadata"] == {"ss_network_module": "networks.lora", "ss_network_dim": "4",
                                            "ss_network_alpha": "2.0"}


def test_a_checkpoint_card_selects_the_model(client, live_app):
    ctx = live_app["ctx"]
    try:
        dropdown, status, _ = client.predict(tab="checkpoints", name="tiny-sd15-b",
                                             api_name="/img2img_extra_networks_select")
        assert dropdown["value"] == "tiny-sd15-b" and "tiny-sd15-b" in status
        assert ctx.selection.current == "tiny-sd15-b" and ctx.store.loaded("tiny-sd15-b") is not None
    finally:
        ctx.selection.select("tiny-sd15")
        ctx.options.update({"sd_model_checkpoint": ctx.selection.record().title})


def test_a_vae_card_sets_the_sd_vae_and_its_selector(client, live_app, networks):
    ctx = live_app["ctx"]
    try:
        _, _, selector = client.predict(tab="vae", name="softvae", api_name="/txt2img_extra_networks_select")
        assert selector["value"] == "softvae.safetensors"  # A1111's sd_vae value: the file name
        assert ctx.options.values()["sd_vae"] == "softvae.safetensors"
    finally:
        ctx.options.update({"sd_vae": "Automatic"})
