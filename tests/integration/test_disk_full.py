"""A disk that fills up while an image is saved: the job says so, nothing partial remains, the next job saves."""

from __future__ import annotations

import errno
import os

import pytest
from PIL import Image

import pipelines.outputs
from pipelines.errors import DiskFullError
from pipelines.requests import Txt2ImgRequest

REQUEST = Txt2ImgRequest(prompt="a fox", width=64, height=64, steps=1, seed=3, sampler_name="Euler",
                         save_images=True)


@pytest.fixture
def disk_full_once(monkeypatch):
    """The next PNG written gets half its bytes out, then the disk is full; later ones are written normally."""
    real = pipelines.outputs._write_png
    calls = []

    def write(image, file, infotext):
        calls.append(1)
        if len(calls) > 1:
            return real(image, file, infotext)
        file.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 4096)
        file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pipelines.outputs, "_write_png", write)
    return calls


def _saved(ctx) -> list[str]:
    return sorted(p.name for p in ctx.settings.outputs_dir.rglob("*") if p.is_file())


def test_engine_job_reports_disk_full_leaves_nothing_and_the_next_job_saves(app_context, disk_full_once):
    with pytest.raises(DiskFullError, match=r"disk full while saving .*txt2img-images.*00000-3\.png"):
        app_context.engine.generate(REQUEST)
    assert _saved(app_context) == []  # neither the half PNG nor its temporary file
    result = app_context.engine.generate(REQUEST)
    with Image.open(result.images[0].path) as image:
        assert image.info["parameters"] == result.images[0].infotext
    assert _saved(app_context) == ["00000-3.png"]


def test_api_answers_507_with_the_message_and_keeps_serving(app_context, disk_full_once):
    from fastapi.testclient import TestClient

    from webui.api.app import ApiConfig, create_api_app

    client = TestClient(create_api_app(app_context, ApiConfig()))
    body = {"prompt": "a fox", "steps": 1, "width": 64, "height": 64, "seed": 3, "sampler_name": "Euler",
            "save_images": True}
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 507
    answer = response.json()
    assert answer["error"] == "DiskFullError" and "disk full while saving" in answer["detail"]
    assert _saved(app_context) == []
    assert client.post("/sdapi/v1/txt2img", json=body).status_code == 200
    assert _saved(app_context) == ["00000-3.png"]
