"""The Models tab over HTTP: download a Hub repo with progress into the cache, rescan, bad ids."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

from pipelines.context import AppContext
from tests.support.apps import free_port, install_models, make_settings
from tests.support.hub_server import LocalHub
from tests.support.ui_client import Client
from webui.server import serve


def test_download_from_the_hub_lists_the_model_and_rescan_finds_new_files(tmp_path, model_store):
    with LocalHub() as hub:
        hub.add_repo("atelier-test/tab-sd15", model_store / "tiny-sd15")
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False)
        try:
            client = Client(url, verbose=False)
            table, message, _dropdown = client.predict(repo_id="atelier-test/tab-sd15", api_name="/download_model")
            assert message == "Downloaded **atelier-test/tab-sd15**"
            rows = {row[0].split(" [")[0]: row for row in table["data"]}
            assert rows["atelier-test/tab-sd15"][1] == "SD 1.x" and rows["atelier-test/tab-sd15"][2] == "hub"
            assert ctx.store.registry.find("atelier-test/tab-sd15").installed

            with pytest.raises(AppError, match="Give a Hub repo id"):
                client.predict(repo_id="not a repo", api_name="/download_model")
            with pytest.raises(AppError, match="no model 'atelier-test/missing' on the Hub"):
                client.predict(repo_id="atelier-test/missing", api_name="/download_model")

            install_models(model_store, tmp_path, ["tiny-sd15-b"])  # a file dropped in while running
            table, _dropdown = client.predict(api_name="/rescan_models")
            assert "tiny-sd15-b" in {row[0].split(" [")[0] for row in table["data"]}
        finally:
            demo.close()
