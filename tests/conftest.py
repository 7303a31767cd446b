"""Shared fixtures: tiny real models built once per session, and app contexts/servers on them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Gradio's temporary folder: one per test process (each xdist worker sets its own), as launch.py gives each
# Atelier its own; never the machine-wide <tmp>/gradio, where files are named by their content, so apps in
# other processes would serve and delete each other's files.
GRADIO_TEMP_DIR = tempfile.mkdtemp(prefix="atelier-gradio-")
os.environ["GRADIO_TEMP_DIR"] = GRADIO_TEMP_DIR

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from pipelines.context import AppContext  # noqa: E402
from tests.support.apps import free_port, install_models, make_settings  # noqa: E402
from tests.support.ldm_export import export_sd15_single_file, write_sidecar_config  # noqa: E402
from tests.support.tiny_models import save_sd15_folder, save_sdxl_folder  # noqa: E402


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    """Tiny models built once: sd15 folder (two seeds), sdxl folder, sd15 single file + sidecar."""
    root = tmp_path_factory.mktemp("models")
    save_sd15_folder(root / "tiny-sd15", seed=0)
    save_sd15_folder(root / "tiny-sd15-b", seed=7)
    save_sdxl_folder(root / "tiny-sdxl", seed=0)
    export_sd15_single_file(root / "tiny-sd15", root / "tiny-sd15-file.safetensors")
    write_sidecar_config(root / "tiny-sd15", root / "tiny-sd15-file.config")
    return root


@pytest.fixture(scope="session")
def sdxl_refiner(model_store) -> Path:
    """The tiny SDXL refiner (``tiny-sdxl-refiner``), built beside the other tiny models on first use."""
    from tests.support.tiny_models import save_sdxl_refiner_folder

    path = model_store / "tiny-sdxl-refiner"
    return path if path.is_dir() else save_sdxl_refiner_folder(path, seed=0)


@pytest.fixture(scope="session")
def refiner_app(tmp_path_factory, model_store, sdxl_refiner) -> Iterator[dict]:
    """The refiner tests' one served app (UI and API, no logins) on tiny-sdxl, its refiner and tiny-sd15:
    ``url`` and ``ctx`` (the engine tests run on the same context, so the models load once)."""
    from webui.api import ApiConfig
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("refiner-data")
    install_models(model_store, data_dir, ["tiny-sdxl", sdxl_refiner.name, "tiny-sd15"])
    ctx = AppContext.build(make_settings(data_dir, initial_model="tiny-sdxl"))
    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False, api=ApiConfig())
    try:
        yield {"url": url, "ctx": ctx}
    finally:
        demo.close()


@pytest.fixture
def app_context(tmp_path, model_store) -> AppContext:
    """A fresh data dir holding tiny-sd15 (folder), tiny-sd15-b and the single file."""
    install_models(model_store, tmp_path, ["tiny-sd15", "tiny-sd15-b", "tiny-sd15-file.safetensors"])
    return AppContext.build(make_settings(tmp_path))


@pytest.fixture(scope="module")
def module_app_context(tmp_path_factory, model_store) -> AppContext:
    """``app_context``'s data dir and models, built once for a module: its tiny models load once, not once per test
    (a load costs 1-2 s on 2 busy cores). For modules whose tests only run jobs and read their own results; a test
    that counts files, looks at the cache or changes models and settings takes a fresh ``app_context``."""
    data_dir = tmp_path_factory.mktemp("module-data")
    install_models(model_store, data_dir, ["tiny-sd15", "tiny-sd15-b", "tiny-sd15-file.safetensors"])
    return AppContext.build(make_settings(data_dir))


@pytest.fixture(scope="session")
def live_app(tmp_path_factory, model_store) -> Iterator[dict]:
    """The real Gradio app served on 127.0.0.1 with tiny models; shared by UI and browser tests."""
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("live-data")
    install_models(model_store, data_dir, ["tiny-sd15", "tiny-sd15-b"])
    ctx = AppContext.build(make_settings(data_dir, initial_model="tiny-sd15"))
    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False)
    try:
        yield {"url": url, "ctx": ctx, "data_dir": data_dir}
    finally:
        demo.close()


def pytest_unconfigure(config) -> None:
    shutil.rmtree(GRADIO_TEMP_DIR, ignore_errors=True)
