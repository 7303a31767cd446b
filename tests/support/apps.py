"""Building apps for tests: copying tiny models into a data dir, test settings, a free port."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.settings import Settings


def install_models(model_store: Path, data_dir: Path, names: list[str]) -> None:
    """Copy models from the store into ``data_dir/models/Stable-diffusion``."""
    target = data_dir / "models" / "Stable-diffusion"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = model_store / name
        if src.is_dir():
            shutil.copytree(src, target / name)
        else:
            shutil.copy2(src, target / name)
        sidecar = src.with_name(src.stem + ".config")
        if src.is_file() and sidecar.is_dir():
            shutil.copytree(sidecar, target / sidecar.name)


def make_settings(data_dir: Path, **overrides) -> Settings:
    base = dict(data_dir=data_dir, hf_cache_dir=data_dir / "hf-cache", hub_offline=True, live_preview_every=2)
    base.update(overrides)
    return Settings(**base)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_ui(ctx) -> Iterator[str]:
    """The Gradio app for ``ctx`` served on a free loopback port; yields its URL, closes it after."""
    from webui.server import serve

    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False)
    try:
        yield url
    finally:
        demo.close()


@contextmanager
def checkpoint_added(app: dict, build, name: str) -> Iterator[str]:
    """A model built by ``build(folder)`` in a served app's checkpoint folder (``app``: a session app fixture's
    dict with ``data_dir`` and ``ctx``), listed for the test and removed after it, from the cache too."""
    folder = build(app["data_dir"] / "models" / "Stable-diffusion" / name)
    store = app["ctx"].store
    store.refresh()
    try:
        yield folder.name
    finally:
        for entry in store.memory():
            if entry.name == folder.name:
                store.unload(entry.key)
        shutil.rmtree(folder)
        store.refresh()
