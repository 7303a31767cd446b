"""Raw diffusers, the speed benchmark's baseline: in the benchmark's process, or as a fresh process.

As a process (``python -m bench.speed_raw --model DIR --out PNG ...``) it is what a user's own diffusers
script does from a cold start: import torch and diffusers, ``from_pretrained`` the folder, make one image,
write it; then it prints one ``RAW-DONE {json}`` line with its own split of the time. The benchmark
times it from the spawn to that line, as it times Atelier's server from its spawn to the first image.

Nothing from Atelier is imported here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DONE_MARKER = "RAW-DONE "
SCHEDULERS = {"Euler": "EulerDiscreteScheduler", "Euler a": "EulerAncestralDiscreteScheduler",
              "LCM": "LCMScheduler"}


@dataclass(frozen=True)
class Job:
    """One txt2img job, as the REST body and as the diffusers call."""

    width: int
    height: int
    steps: int = 4
    cfg_scale: float = 7.0
    sampler: str = "Euler"
    seed: int = 1234
    prompt: str = "a watercolor fox in a misty forest"

    def rest_body(self, model: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /sdapi/v1/txt2img``'s body: A1111's fields, the checkpoint through ``override_settings``."""
        return {"prompt": self.prompt, "negative_prompt": "", "sampler_name": self.sampler, "scheduler": "Automatic",
                "steps": self.steps, "cfg_scale": self.cfg_scale, "width": self.width, "height": self.height,
                "seed": self.seed, "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False,
                "override_settings": {"sd_model_checkpoint": model, **(overrides or {})}}


def load_pipeline(folder: Path, sampler: str = "Euler"):
    import diffusers
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[sampler]).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, job: Job):
    """One PIL image, seeded on the CPU as Atelier seeds it."""
    import torch

    return pipe(job.prompt, negative_prompt="", num_inference_steps=job.steps, width=job.width, height=job.height,
                guidance_scale=job.cfg_scale, output_type="pil",
                generator=torch.Generator("cpu").manual_seed(job.seed)).images[0]


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    p = argparse.ArgumentParser(prog="python -m bench.speed_raw")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--job", required=True, help="the Job as JSON")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    job = Job(**json.loads(args.job))
    import torch

    torch.set_num_threads(args.threads)
    imported = time.perf_counter()
    pipe = load_pipeline(args.model, job.sampler)
    loaded = time.perf_counter()
    image = generate(pipe, job)
    generated = time.perf_counter()
    image.save(args.out)
    split = {"import_s": imported - started, "load_s": loaded - imported, "generate_s": generated - loaded,
             "pid": os.getpid()}
    print(DONE_MARKER + json.dumps(split), flush=True)
    return 0


def job_json(job: Job) -> str:
    return json.dumps(asdict(job))


if __name__ == "__main__":
    sys.exit(main())
