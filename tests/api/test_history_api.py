"""/atelier/v1/history over HTTP on the shared API server: an image made through /sdapi/v1/txt2img is found by
a search, fetched with its file, favourited, deleted to the trash and restored; bad parameters get a 422 naming
them, unknown ids a 404, no login a 401; the routes are in /docs' schema."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.support.api import API_USER, FAST


@pytest.fixture(scope="module")
def atelier(api_app):
    with httpx.Client(base_url=api_app["url"] + "atelier/v1", auth=API_USER, timeout=120) as client:
        yield client


def test_search_fetch_favourite_delete_restore(api, atelier, api_app):
    api_app["ctx"].history.rescan_in_background().join(timeout=60)  # the start-up rebuild is done
    made = api.post("/txt2img", json={**FAST, "prompt": "a zebra teapot, history test", "save_images": True})
    assert made.status_code == 200, made.text
    found = atelier.get("/history", params={"q": "zebra", "model": "tiny-sd15", "width": 64}).json()
    assert found["total"] == 1 and found["pages"] == 1
    item = found["items"][0]
    assert (item["prompt"], item["seed"], item["steps"], item["mode"]) == ("a zebra teapot, history test", 11, 3,
                                                                          "txt2img")
    assert atelier.get(f"/history/{item['id']}").json()["infotext"] == item["infotext"]
    file = atelier.get(f"/history/{item['id']}/file")
    assert file.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(file.content)).info["parameters"] == item["infotext"]

    assert atelier.post(f"/history/{item['id']}/favourite", json={"favourite": True}).json()["favourite"]
    assert [i["id"] for i in atelier.get("/history", params={"favourite": True}).json()["items"]] == [item["id"]]

    trashed = atelier.delete(f"/history/{item['id']}").json()
    assert trashed["trashed"] and trashed["path"] == ".trash/" + item["path"]
    assert not (api_app["data_dir"] / "outputs" / item["path"]).exists()
    assert atelier.get("/history", params={"q": "zebra"}).json()["total"] == 0
    assert atelier.get("/history", params={"q": "zebra", "trashed": True}).json()["total"] == 1
    assert atelier.get(f"/history/{item['id']}/file").status_code == 200  # still viewable in the trash
    restored = atelier.post(f"/history/{item['id']}/restore").json()
    assert restored["path"] == item["path"] and restored["favourite"] and not restored["trashed"]
    assert (api_app["data_dir"] / "outputs" / item["path"]).is_file()
    assert atelier.post("/history/rescan").json()["removed"] == 0


@pytest.mark.parametrize(("params", "field"), [({"page_size": 0}, "page_size"), ({"page": 0}, "page"),
                                               ({"date_from": "yesterday"}, "date_from"), ({"width": -5}, "width")])
def test_bad_parameters_name_the_field(atelier, params, field):
    response = atelier.get("/history", params=params)
    assert response.status_code == 422 and field in response.json()["errors"]


def test_unknown_ids_logins_and_docs(atelier, api_app):
    for response in (atelier.get("/history/999999"), atelier.get("/history/999999/file"),
                     atelier.delete("/history/999999"), atelier.post("/history/999999/restore")):
        assert response.status_code == 404 and response.json()["error"] == "HistoryNotFound"
    assert httpx.get(api_app["url"] + "atelier/v1/history", timeout=60).status_code == 401
    paths = httpx.get(api_app["url"] + "openapi.json", auth=API_USER, timeout=60).json()["paths"]
    assert {"/atelier/v1/history", "/atelier/v1/history/{entry_id}", "/atelier/v1/history/{entry_id}/file",
            "/atelier/v1/history/rescan"} <= set(paths)
