"""The Imagine tab over real HTTP (gradio_client) on the live app's tiny models: a prompt makes a 2x2 grid, then
U2 and V3 on it each add a new entry on top of the feed, with their files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from pipelines.outputs import read_infotext
from tests.support.ui_client import Client

SETTINGS = dict(checkpoint="tiny-sd15", sampler_name="Euler", scheduler="Automatic", steps=2, cfg_scale=7,
                width=64, height=64, seed=31, batch_size=1, n_iter=1)


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


def test_imagine_then_u2_then_v3_grows_the_feed_newest_first(client, live_app):
    feed = client.predict(imagine_prompt="a teapot on a table", count=4, feed=[], **SETTINGS, api_name="/imagine")
    assert [e["kind"] for e in feed] == ["imagine"] and feed[0]["seeds"] == [31, 32, 33, 34]
    first = feed[0]
    outputs = live_app["data_dir"] / "outputs"
    assert Path(first["grid"]).parent.parent == outputs / "txt2img-grids"
    with Image.open(first["grid"]) as grid:
        assert grid.size == (128, 128) and parse_infotext(read_infotext(grid))["Prompt"] == "a teapot on a table"

    feed = client.predict(feed, first["id"], "upscale", 2, 2, 4, api_name="/imagine_action")
    feed = client.predict(feed, first["id"], "vary_strong", 3, 2, 4, api_name="/imagine_action")
    assert [e["kind"] for e in feed] == ["vary_strong", "upscale", "imagine"]
    assert feed[2] == first  # the older entries are kept as they were
    upscaled, varied = feed[1], feed[0]
    assert varied["title"].startswith("V3 (strong) · image 3 of entry 1") and upscaled["title"].startswith("U2")
    assert upscaled["grid"] is None and len(upscaled["images"]) == 1
    with Image.open(upscaled["images"][0]) as big:
        assert big.size == (128, 128)
        assert parse_infotext(read_infotext(big))["Seed"] == "32"  # U2 upscaled the second image
    assert len(varied["images"]) == 4 and Path(varied["grid"]).parent.parent == outputs / "img2img-grids"
    assert all(Path(p).is_file() for e in feed for p in [*e["images"], *filter(None, [e["grid"]])])
    with Image.open(varied["images"][0]) as image:
        params = parse_infotext(read_infotext(image))
    assert params["Denoising strength"] == "0.85" and params["Prompt"] == "a teapot on a table"


def test_an_action_on_a_missing_image_is_a_clear_error(client):
    with pytest.raises(Exception, match="no entry 9"):
        client.predict([], 9, "upscale", 1, 2, 4, api_name="/imagine_action")
