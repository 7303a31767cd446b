"""The History tab over real HTTP (gradio_client, shared live app): an image made with the txt2img tab is found by
a search, opens with its parameters, is favourited, deleted to the trash, restored and sent to img2img."""

from __future__ import annotations

import pytest

from pipelines.history import HistoryQuery
from tests.support.ui_client import Client

MADE = dict(checkpoint="tiny-sd15", prompt="a walrus astronaut, history tab", negative_prompt="blurry",
            sampler_name="Euler a", steps=2, width=64, height=64, seed=77, batch_size=1, n_iter=1)
FILTERS = dict(text="walrus", model="", mode="", date_from="", date_to="", size="", favourites=False, trash=False)


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


def search(client, **changes) -> tuple[list, str]:
    gallery, _, label, *_ = client.predict(**{**FILTERS, **changes}, api_name="/history_search")
    return gallery, label


def test_search_open_favourite_trash_restore(client, live_app):
    history = live_app["ctx"].history
    history.rescan_in_background().join(timeout=60)
    _, info = client.predict(**MADE, api_name="/txt2img")
    gallery, label = search(client)
    assert len(gallery) == 1 and label.startswith("1 image(s) · page 1 of 1")
    assert gallery[0]["caption"] == "a walrus astronaut, history tab" and gallery[0]["image"].endswith(".webp")
    entry_id = history.search(HistoryQuery(text="walrus")).entries[0].id
    _, about, parameters, *_ = client.predict(entry_id=entry_id, api_name="/history_open")
    assert parameters == info and "**txt2img** · 64x64 · model tiny-sd15" in about

    client.predict(entry_id=entry_id, current_page=1, **FILTERS, api_name="/history_favourite")
    assert search(client, text="", favourites=True)[0][0]["caption"].startswith("⭐ a walrus")
    assert search(client, size="64x", model="tiny-sd15")[1].startswith("1 image(s)")
    with pytest.raises(Exception, match="size"):
        search(client, size="big")

    client.predict(entry_id=entry_id, current_page=1, **FILTERS, api_name="/history_trash")
    assert search(client)[0] == [] and len(search(client, trash=True)[0]) == 1
    assert history.get(entry_id).trashed
    client.predict(entry_id=entry_id, current_page=1, **{**FILTERS, "trash": True}, api_name="/history_restore")
    assert len(search(client)[0]) == 1 and not history.get(entry_id).trashed

    client.predict(entry_id=entry_id, api_name="/history_open")  # the picked file is this page's
    assert client.predict(infotext=parameters, api_name="/history_send_to_txt2img")[1] == MADE["prompt"]
    values = client.predict(api_name="/history_send_to_img2img")
    assert values[:3] == ("tiny-sd15", "a walrus astronaut, history tab", "blurry")
    assert any(isinstance(v, str) and v.endswith("77.png") for v in values)  # the file itself, NNNNN-SEED.png
