"""Uploads through the UI: a file over the limit is refused before it is stored (issue 12: uploads limited)."""

from __future__ import annotations

import httpx
import pytest

from pipelines.context import AppContext
from tests.support.apps import make_settings, served_ui


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    data = tmp_path_factory.mktemp("uploads")
    settings = make_settings(data, max_upload_bytes=50_000)
    with served_ui(AppContext.build(settings)) as served:
        yield served


def upload(url: str, size: int) -> httpx.Response:
    return httpx.post(f"{url}gradio_api/upload", files={"files": ("picture.png", b"\x89PNG" + b"\0" * size)},
                      timeout=30)


def test_an_upload_over_the_limit_is_refused(url):
    refused = upload(url, 60_000)
    assert refused.status_code == 413, refused.text
    assert upload(url, 10_000).status_code == 200

