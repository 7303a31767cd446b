"""webuiapi (unmodified, PyPI) against a served Atelier with a LoRA: the calls an A1111 client makes for LoRAs.

``get_loras`` lists the file in A1111's shape, ``refresh-loras`` (a POST on the client's session) picks up
a file copied in while the server runs, and a txt2img whose prompt names the LoRA changes the image,
writes ``Lora hashes`` and leaves the next job as before.
"""

from __future__ import annotations

from urllib.parse import urlparse

import numpy as np
import pytest
import webuiapi

from pipelines.models.kinds import ModelType
from tests.support.api import API_USER
from tests.support.tiny_loras import save_kohya_lora_for


@pytest.fixture(scope="module")
def client(api_app):
    url = urlparse(api_app["url"])
    return webuiapi.WebUIApi(host=url.hostname, port=url.port, sampler="Euler", steps=2,
                             username=API_USER[0], password=API_USER[1])


def refresh_loras(client) -> None:
    """webuiapi has no refresh call for LoRAs; clients POST the A1111 route on its session (null reply)."""
    reply = client.session.post(f"{client.baseurl}/refresh-loras")
    assert reply.status_code == 200 and reply.json() is None


@pytest.fixture
def lora_file(api_app, model_store, client):
    """A kohya LoRA for tiny-sd15 copied into the running server's models/Lora, removed afterwards."""
    path = api_app["data_dir"] / "models" / "Lora" / "paperink.safetensors"
    save_kohya_lora_for(model_store / "tiny-sd15", path, seed=4)
    try:
        yield path
    finally:
        path.unlink()
        refresh_loras(client)


def test_loras_are_listed_refreshed_and_applied_from_the_prompt(client, api_app, lora_file):
    assert all(item["name"] != "paperink" for item in client.get_loras())  # not scanned yet
    refresh_loras(client)
    listed = {item["name"]: item for item in client.get_loras()}
    assert set(listed["paperink"]) == {"name", "alias", "path", "metadata"}
    assert listed["paperink"]["path"] == str(lora_file)
    assert listed["paperink"]["metadata"]["ss_network_module"] == "networks.lora"

    def image(prompt: str):
        return client.txt2img(prompt=prompt, width=64, height=64, seed=11, cfg_scale=5)

    before = image("a fox")
    with_lora = image("a fox <lora:paperink:0.9>")
    after = image("a fox")
    record = api_app["ctx"].store.hashed(api_app["ctx"].store.find("paperink", ModelType.LORA))
    assert f'Lora hashes: "paperink: {record.addnet_hash[:12]}"' in with_lora.info["infotexts"][0]
    assert not np.array_equal(np.asarray(with_lora.image), np.asarray(before.image))
    assert np.array_equal(np.asarray(after.image), np.asarray(before.image))


def test_an_unknown_lora_is_a_clear_client_error(client, lora_file):
    refresh_loras(client)
    with pytest.raises(RuntimeError) as raised:  # webuiapi raises RuntimeError with the body on non-200 replies
        client.txt2img(prompt="a fox <lora:paperinc:1>", width=64, height=64, seed=1)
    status, body = raised.value.args
    assert 400 <= status < 500 and "paperinc" in body and "paperink" in body  # the closest name is suggested
