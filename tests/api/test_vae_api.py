"""The SD VAE over HTTP on tiny models: /sd-vae, /refresh-vae, ``sd_vae`` in override_settings and /options,
``sd_vae_name``/``sd_vae_hash`` in the info, and an infotext's VAE applied."""

from __future__ import annotations

import json

import pytest

from tests.support.api import FAST
from tests.support.tiny_networks import save_vae_file

VAE = "ft-mse.safetensors"


@pytest.fixture
def vae_file(api, api_app):
    """A VAE file in the shared app's models/VAE for one test (taken out again, and the SD VAE option restored)."""
    path = api_app["data_dir"] / "models" / "VAE" / VAE
    before = api.get("/options").json()["sd_vae"]
    try:
        assert VAE not in [v["model_name"] for v in api.get("/sd-vae").json()]
        save_vae_file(path, seed=21, layout="original")
        yield path
    finally:
        path.unlink(missing_ok=True)
        api.post("/refresh-vae")
        api.post("/options", json={"sd_vae": before})


def _txt2img(api, **fields) -> dict:
    response = api.post("/txt2img", json={**FAST, **fields})
    assert response.status_code == 200, response.text
    return json.loads(response.json()["info"])


def test_a_vae_file_is_listed_after_refresh_and_used_per_request(api, vae_file):
    assert api.post("/refresh-vae").json() is None
    assert {"model_name": VAE, "filename": str(vae_file.resolve())} in api.get("/sd-vae").json()
    own = _txt2img(api, override_settings={"sd_vae": "None"})
    used = _txt2img(api, override_settings={"sd_vae": VAE})
    assert own["sd_vae_name"] is None and "VAE" not in own["infotexts"][0]
    assert used["sd_vae_name"] == VAE and len(used["sd_vae_hash"]) == 10
    assert f"VAE hash: {used['sd_vae_hash']}, VAE: {VAE}" in used["infotexts"][0]
    assert api.get("/options").json()["sd_vae"] != VAE  # override_settings is for the one request
    pasted = _txt2img(api, infotext=used["infotexts"][0])  # the infotext's VAE becomes the request's
    assert pasted["sd_vae_name"] == VAE and pasted["infotexts"][0] == used["infotexts"][0]


def test_unknown_vae_names_are_refused_naming_the_field(api):
    response = api.post("/txt2img", json={**FAST, "override_settings": {"sd_vae": "missing.safetensors"}})
    assert response.status_code == 422 and "override_settings.sd_vae" in response.text
    response = api.post("/options", json={"sd_vae": "missing.safetensors"})
    assert response.status_code == 422 and "sd_vae" in response.text
    assert api.get("/options").json()["sd_vae"] != "missing.safetensors"
