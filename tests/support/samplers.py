"""The sampler menu every test expects, by A1111 name: built on its own (unit) and run on a tiny model
(integration)."""

from __future__ import annotations

REQUIRED_SAMPLERS = ["Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ SDE",
                     "DDIM", "PLMS", "UniPC", "LCM"]
