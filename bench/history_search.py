"""History search at an artist's scale: 100,000 images indexed, typical searches timed (not in CI).

    .venv/bin/python bench/history_search.py [--images 100000] [--repeat 15]

1. Builds a history database in a temporary folder with ``--images`` synthetic records written through the
   history's own write path (``HistoryDatabase.upsert``, 1,000 per transaction): prompts drawn from a prompt-like
   vocabulary with weights and LoRA tags, 12 models, 4 modes, two years of dates, 5% favourites.
2. Times each search ``--repeat`` times (a fresh query each time, the page of 48 and the total count, as the
   History tab and /atelier/v1/history ask) and prints the median and worst in milliseconds.
Prints one JSON line; exits 1 when a median is over the target (100 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.history.database import HistoryDatabase  # noqa: E402
from pipelines.history.records import HistoryEntry, HistoryQuery  # noqa: E402

TARGET_MS = 100.0
SUBJECTS = ["a red fox", "a lighthouse", "an old woman", "a cyberpunk city", "a castle", "a cat", "a knight",
            "a dragon", "a bowl of ramen", "a forest spirit", "a sailing ship", "a robot", "a portrait of a girl",
            "a mountain lake", "a steampunk airship", "a samurai", "an astronaut", "a witch", "a teapot", "a wolf"]
DETAILS = ["in the snow", "at dusk", "under neon lights", "in a misty forest", "on a beach", "in the rain",
           "golden hour", "volumetric lighting", "highly detailed", "8k", "sharp focus", "bokeh", "film grain",
           "oil painting", "watercolor", "concept art", "studio ghibli style", "trending on artstation",
           "cinematic", "dramatic clouds", "intricate", "soft light", "wide angle", "close-up", "blue_hair",
           "red eyes", "smiling", "looking at viewer", "full body", "masterpiece", "best quality"]
NEGATIVES = ["blurry", "lowres", "bad anatomy", "extra fingers", "watermark", "text", "jpeg artifacts", "ugly",
             "deformed", "worst quality", "signature", "cropped"]
MODELS = ["v1-5-pruned-emaonly", "dreamshaper_8", "realisticVisionV60", "sd_xl_base_1.0", "juggernautXL_v9",
          "ponyDiffusionV6XL", "animagineXL31", "deliberate_v3", "revAnimated_v122", "epicrealism", "counterfeitV30",
          "sdxl_turbo"]
LORAS = ["pixel_art", "add_detail", "film_photo", "more_details", "ghibli_style", "lcm_lora"]
MODES = ["txt2img"] * 6 + ["img2img"] * 2 + ["extras", "outpaint"]
SAMPLERS = ["Euler a", "DPM++ 2M", "DPM++ SDE", "UniPC", "DDIM"]
SIZES = [(512, 512), (512, 768), (768, 512), (1024, 1024), (832, 1216), (1216, 832)]


def synthetic(rng: random.Random, n: int, start: float, span: float) -> tuple[HistoryEntry, int, int]:
    details = rng.sample(DETAILS, rng.randint(3, 9))
    if rng.random() < 0.3:
        details[0] = f"({details[0]}:{rng.choice(['1.1', '1.2', '1.3'])})"
    loras = rng.sample(LORAS, rng.choice([0, 0, 0, 1, 2]))
    prompt = ", ".join([rng.choice(SUBJECTS), *details, *(f"<lora:{name}:0.8>" for name in loras)])
    negative = ", ".join(rng.sample(NEGATIVES, rng.randint(2, 6)))
    width, height = rng.choice(SIZES)
    mode = rng.choice(MODES)
    day = dt.date.fromtimestamp(start + span * n / 100_000).isoformat()
    entry = HistoryEntry(
        id=0, path=f"{mode}-images/{day}/{n:05d}-{n}.png", mode=mode, kind="images", prompt=prompt,
        negative_prompt=negative, seed=rng.randrange(2**32), width=width, height=height, sampler=rng.choice(SAMPLERS),
        steps=rng.choice([20, 25, 30, 40]), cfg_scale=rng.choice([5.0, 6.5, 7.0]), model=rng.choice(MODELS),
        model_hash=f"{rng.randrange(16**10):010x}", loras=tuple(loras), created=start + span * n / 100_000,
        favourite=rng.random() < 0.05, infotext=f"{prompt}\nNegative prompt: {negative}\nSteps: 20, Seed: {n}")
    return entry, 0, 0


def build(db: HistoryDatabase, images: int) -> float:
    rng = random.Random(0)
    start = time.time() - 2 * 365 * 86400
    span = 2 * 365 * 86400 * 100_000 / images
    began = time.perf_counter()
    for first in range(0, images, 1000):
        db.upsert(synthetic(rng, n, start, span) for n in range(first, min(images, first + 1000)))
    return time.perf_counter() - began


def searches() -> dict[str, HistoryQuery]:
    recent = dt.date.today() - dt.timedelta(days=90)
    return {
        "newest page": HistoryQuery(),
        "page 50": HistoryQuery(page=50),
        "text: common word (fox)": HistoryQuery(text="fox"),
        "text: two words + phrase": HistoryQuery(text='lighthouse "golden hour"'),
        "text: prefix + exclusion": HistoryQuery(text="cyber -neon"),
        "text: rare word, no match": HistoryQuery(text="zeppelin"),
        "text: negative prompt": HistoryQuery(text="neg:watermark castle"),
        "model + date range": HistoryQuery(model="sd_xl_base_1.0", date_from=recent, date_to=dt.date.today()),
        "favourites": HistoryQuery(favourite=True),
        "text + model + size": HistoryQuery(text="portrait", model="dreamshaper_8", width=512, height=768),
        "mode + favourites": HistoryQuery(mode="img2img", favourite=True),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="build the database in this folder and keep it (reused if there)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-history-bench-") as temporary:
        folder = args.keep or Path(temporary)
        reuse = (folder / "history.sqlite3").exists()
        db = HistoryDatabase(folder / "history.sqlite3")
        build_s = 0.0 if reuse else build(db, args.images)
        size_mb = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("history")) / 2**20
        results = {}
        for label, query in searches().items():
            times, total = [], 0
            for _ in range(args.repeat):
                began = time.perf_counter()
                _, total = db.search(query.validate())
                times.append((time.perf_counter() - began) * 1000)
            results[label] = {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2),
                              "matches": total}
            print(f"{label:28s} median {statistics.median(times):7.2f} ms   max {max(times):7.2f} ms   "
                  f"{total:6d} matches", file=sys.stderr)
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            db.distinct("model"), db.distinct("mode")
            times.append((time.perf_counter() - began) * 1000)
        results["filter choices (models, modes)"] = {"median_ms": round(statistics.median(times), 2),
                                                      "max_ms": round(max(times), 2), "matches": 0}
        db.close()
    print(json.dumps({"images": args.images, "build_s": round(build_s, 1), "database_mb": round(size_mb, 1),
                      "fts5": db.fts, "searches": results}))
    return 0 if all(r["median_ms"] < TARGET_MS for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
