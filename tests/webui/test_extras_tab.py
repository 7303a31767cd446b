"""The Upscale tab over real HTTP (gradio_client): a tiny real RRDBNet in models/ESRGAN, Lanczos, batches,
"Scale to", refresh, Hub downloads and readable errors; plus the Upscale / Send to extras result actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import handle_file
from PIL import Image

from pipelines.context import AppContext
from tests.support.apps import free_port, install_models, make_settings
from tests.support.hub_server import LocalHub
from tests.support.tiny_upscalers import save_rrdbnet
from tests.support.ui_client import Client

ESRGAN = "tiny-RRDBNet_x4"


@pytest.fixture(scope="module")
def app(tmp_path_factory, model_store) -> Iterator[dict]:
    """The app with tiny-sd15 and a tiny 4x RRDBNet in models/ESRGAN, able to reach a local Hub."""
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("extras-data")
    install_models(model_store, data_dir, ["tiny-sd15"])
    save_rrdbnet(data_dir / "models" / "ESRGAN" / f"{ESRGAN}.safetensors", scale=4)
    hub = LocalHub().start()
    ctx = AppContext.build(make_settings(data_dir, initial_model="tiny-sd15", hub_offline=False,
                                         hf_endpoint=hub.endpoint))
    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False)
    try:
        yield {"client": Client(url, verbose=False), "ctx": ctx, "data_dir": data_dir, "hub": hub}
    finally:
        demo.close()
        hub.stop()


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "source.png"
    Image.radial_gradient("L").resize((40, 24)).convert("RGB").save(path)
    return path


def upscale(client: Client, **values):
    """The Upscale button over HTTP; the inputs left out keep the form's defaults (no image, no files)."""
    return client.predict(**{"image": None, "batch_files": None, **values}, api_name="/extras")


def saved(data_dir: Path) -> set[Path]:
    return set((data_dir / "outputs" / "extras-images").glob("*/*.png"))


def test_the_dropdowns_list_the_installed_model_first(app):
    upscaler_1, upscaler_2 = app["client"].predict(api_name="/refresh_upscalers")
    names = [value for _, value in upscaler_1["choices"]]
    assert names[:3] == ["None", "Lanczos", "Nearest"] and ESRGAN in names
    assert upscaler_1["value"] == ESRGAN  # the first model upscaler is the default
    assert [value for _, value in upscaler_2["choices"]] == names and "value" not in upscaler_2  # kept


def test_scale_by_with_the_esrgan_model_saves_a_4x_image(app, source):
    before = saved(app["data_dir"])
    gallery, info = upscale(app["client"], image=handle_file(str(source)), upscaler_1=ESRGAN, upscaling_resize=4)
    assert len(gallery) == 1
    with Image.open(gallery[0]["image"]) as out:
        assert out.size == (160, 96)
    new = saved(app["data_dir"]) - before
    assert len(new) == 1
    with Image.open(new.pop()) as png:
        assert png.size == (160, 96) and png.info.get("parameters") == info
    assert ESRGAN in info


def test_scale_to_a_size_crops_to_fit(app, source):
    gallery, _ = upscale(app["client"], image=handle_file(str(source)), resize_mode=1, upscaling_resize_w=64,
                         upscaling_resize_h=64, upscaling_crop=True, upscaler_1="Lanczos")
    with Image.open(gallery[0]["image"]) as out:
        assert out.size == (64, 64)


def test_batch_upscales_every_file(app, source, tmp_path):
    other = tmp_path / "other.png"
    Image.new("RGB", (16, 32), "orange").save(other)
    gallery, _ = upscale(app["client"], source="Batch", batch_files=[handle_file(str(source)), handle_file(str(other))],
                         upscaler_1="Lanczos", upscaling_resize=2)
    sizes = sorted(Image.open(item["image"]).size for item in gallery)
    assert sizes == [(32, 64), (80, 48)]


@pytest.mark.parametrize(("values", "message"), [
    ({}, "Drop or paste an image"),
    ({"source": "Batch"}, "Add one or more image files"),
    ({"upscaler_1": "no-such-upscaler"}, "unknown upscaler 'no-such-upscaler'"),
])
def test_bad_input_is_a_clear_error(app, source, values, message):
    if "upscaler_1" in values:
        values = {**values, "image": handle_file(str(source))}
    with pytest.raises(Exception, match=message):
        upscale(app["client"], **values)


def test_refresh_lists_a_model_dropped_into_the_folder(app):
    path = save_rrdbnet(app["data_dir"] / "models" / "ESRGAN" / "dropped_x4.safetensors", scale=4, seed=3)
    try:
        app["client"].predict(api_name="/refresh_upscalers")
        assert "dropped_x4" in app["ctx"].upscalers.names()
    finally:
        path.unlink()
        app["ctx"].upscalers.refresh()


def test_download_from_hub_lists_the_model_and_selects_it(app, tmp_path, source):
    repo = tmp_path / "repo"
    save_rrdbnet(repo / "hub_x4.safetensors", scale=4, seed=5)
    app["hub"].add_repo("atelier-test/upscalers", repo)
    message, upscaler_1, _ = app["client"].predict("atelier-test/upscalers", "hub_x4.safetensors",
                                                   api_name="/download_upscaler")
    assert message == "Downloaded **hub_x4**" and upscaler_1["value"] == "hub_x4"
    assert ["hub_x4", "hub_x4"] in upscaler_1["choices"]
    assert (app["data_dir"] / "models" / "ESRGAN" / "hub_x4.safetensors").is_file()
    gallery, info = upscale(app["client"], image=handle_file(str(source)), upscaler_1="hub_x4", upscaling_resize=4)
    assert "hub_x4" in info
    with Image.open(gallery[0]["image"]) as out:
        assert out.size == (160, 96)


@pytest.mark.parametrize(("repo", "filename", "message"), [
    ("not-a-repo", "x.pth", "Give a Hub repo id"),
    ("atelier-test/upscalers", "missing.safetensors", "missing.safetensors"),
    ("atelier-test/nothing-here", "x.safetensors", "atelier-test/nothing-here"),
])
def test_download_errors_name_what_is_wrong(app, repo, filename, message, tmp_path):
    save_rrdbnet(tmp_path / "repo" / "other_x4.safetensors", scale=4)
    app["hub"].add_repo("atelier-test/upscalers", tmp_path / "repo")
    with pytest.raises(Exception, match=message):
        app["client"].predict(repo, filename, api_name="/download_upscaler")


def test_download_while_the_hub_is_unreachable_says_so(app, tmp_path):
    save_rrdbnet(tmp_path / "repo" / "late_x4.safetensors", scale=4)
    app["hub"].add_repo("atelier-test/late", tmp_path / "repo")
    app["hub"].set_offline(True)
    try:
        with pytest.raises(Exception) as err:
            app["client"].predict("atelier-test/late", "late_x4.safetensors", api_name="/download_upscaler")
    finally:
        app["hub"].set_offline(False)
    assert "atelier-test/late/late_x4.safetensors could not be downloaded" in str(err.value)
    assert "Traceback" not in str(err.value)
    assert not (app["data_dir"] / "models" / "ESRGAN" / "late_x4.safetensors").exists()
