"""spandrel without torchvision: the architecture registry Atelier builds, in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from pipelines.models.spandrel_import import SpandrelLoader
loaded = SpandrelLoader().get()
ids = [arch.architecture.id for arch in loaded.registry.architectures()]
from diffusers import StableDiffusionPipeline  # still importable next to it
print(json.dumps({"full": loaded.full, "ids": ids, "missing": list(loaded.missing),
                  "torchvision": "torchvision" in sys.modules}))
"""


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_registry_without_torchvision_has_the_upscalers_and_leaves_diffusers_working():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["full"] is False and result["torchvision"] is False
    assert {"ESRGAN", "SwinIR", "HAT", "DAT", "Compact", "SPAN", "OmniSR", "RealCUGAN"} <= set(result["ids"])
    assert not {"RestoreFormer", "LaMa"} & set(result["ids"])
    assert result["missing"] == ["LaMa", "RestoreFormer"]
    assert len(result["ids"]) == 40  # spandrel 0.4.2's 42 architectures minus the two that need torchvision
