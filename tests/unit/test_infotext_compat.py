"""Infotexts written by other programs: parsed, then mapped onto a txt2img request.

The example infotexts are RECONSTRUCTED from knowledge of each program's format
(A1111 ``processing.create_infotext``, Forge, SD.Next, Fooocus's "a1111" metadata
scheme), not copied from real files: key names and value shapes follow those
programs; the values are made up.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from pipelines import samplers
from pipelines.infotext.codec import format_infotext, parse_infotext
from pipelines.infotext.paste import a1111_version, paste_parameters, to_txt2img_request, writer
from pipelines.modes.txt2img import infotext_params
from pipelines.requests import EMPHASIS_MODES, HiresFix, Txt2ImgRequest

A1111_1_10 = """masterpiece, a (red:1.2) fox, <lora:add_detail:0.6>
Negative prompt: blurry, lowres
Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3052345201, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, Hires steps: 10, Hires upscaler: R-ESRGAN 4x+, Lora hashes: "add_detail: 7c6bad76eb54", Emphasis: Original, Version: v1.10.1"""  # noqa: E501

# 1.6: schedule types did not exist yet; the schedule was part of the sampler's name.
A1111_1_6 = """portrait of an old sailor, oil painting
Negative prompt: (worst quality:1.4), EasyNegative
Steps: 30, Sampler: DPM++ 2M SDE Karras, CFG scale: 7, Seed: 1150235112, Size: 512x640, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, TI hashes: "EasyNegative: c74b4e810b03", Version: v1.6.0"""  # noqa: E501

A1111_1_8_PLAIN = """a lighthouse
Steps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 5, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.8.0"""  # noqa: E501

# Late 2022: legacy 8-digit hash, no model name, no version, GPU noise by default.
A1111_2022 = """1girl, solo, looking at viewer
Negative prompt: lowres, bad anatomy
Steps: 28, Sampler: Euler a, CFG scale: 11, Seed: 3791364839, Size: 512x768, Model hash: 925997e9, Batch size: 4, Batch pos: 2, Clip skip: 2, ENSD: 31337"""  # noqa: E501

FORGE_FLUX = """a neon sign that says "open late", rainy street
Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 2568839312, Size: 896x1152, Model hash: bea01d51bd, Model: flux1-dev-bnb-nf4-v2, Version: f2.0.1v1.10.1-previous-519-g44eb4ea8, Module 1: ae, Module 2: clip_l, Module 3: t5xxl_fp16, Diffusion in Low Bits: Automatic (fp16 LoRA)"""  # noqa: E501

FORGE_BETA = """a castle on a hill
Negative prompt: fog
Steps: 25, Sampler: Euler, Schedule type: Beta, CFG scale: 5, Seed: 77, Size: 832x1216, Model hash: 4496b36d48, Model: juggernautXL_v9, Beta schedule alpha: 0.5, Beta schedule beta: 0.6, Version: f0.0.17v1.8.0rc-latest-276-g29be1da7"""  # noqa: E501

SDNEXT = """photo of a red panda in a bamboo forest
Negative prompt: cartoon
Steps: 20, Seed: 2296393383, Sampler: Default, CFG scale: 6, Size: 1024x1024, Parser: Full parser, Model: sdxl-base-1.0, Model hash: 31e35c80fc, Backend: Diffusers, App: SD.Next, Version: 1e7c3c4, Operations: txt2img, Pipeline: StableDiffusionXLPipeline"""  # noqa: E501

FOOOCUS_A1111 = """a cinematic photo of a lighthouse at dusk, highly detailed
Negative prompt: unrealistic, saturated, high contrast
Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 1234567890123456, Size: 1152x896, CFG scale: 4, Sharpness: 2, ADM Guidance: "(1.5, 0.8, 0.3)", Refiner Switch: 0.8, Scheduler: karras, Performance: Speed, Styles: "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']", Model: juggernautXL_v8Rundiffusion, Model hash: aeb7e9e689, Lora hashes: "sd_xl_offset_example-lora_1.0: 4852686128", Version: Fooocus v2.5.5"""  # noqa: E501

CIVITAI = """a watercolor owl
Steps: 25, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 512x512, Version: v1.9.4, Hashes: {"vae": "c6a580b13a", "model": "6ce0161689"}, Template: a watercolor owl"""  # noqa: E501


def paste(text: str):
    return paste_parameters(parse_infotext(text))


def test_a1111_1_10():
    p = parse_infotext(A1111_1_10)
    assert p["Prompt"].endswith("<lora:add_detail:0.6>") and p["Lora hashes"] == "add_detail: 7c6bad76eb54"
    pasted = paste(A1111_1_10)
    assert pasted.fields == {"prompt": p["Prompt"], "negative_prompt": "blurry, lowres", "steps": 28,
                             "cfg_scale": 6.5, "seed": 3052345201, "width": 512, "height": 768,
                             "sampler_name": "DPM++ 2M", "scheduler": "Karras", "clip_skip": 2, "emphasis": "Original",
                             "hires": HiresFix(hr_scale=2.0, hr_upscaler="R-ESRGAN 4x+", hr_second_pass_steps=10,
                                               denoising_strength=0.45), "refiner": None,
                             "subseed_strength": 0.0, "seed_resize_from_w": 0, "seed_resize_from_h": 0,
                             "sd_vae_decode_method": "Full", "sd_vae_encode_method": "Full"}  # A1111's when absent
    assert not any(n.startswith("Not applied") for n in pasted.notes)  # clip skip, emphasis and hires all apply
    assert any("RNG: GPU" in n for n in pasted.notes)  # A1111's default when RNG is absent


def test_a1111_1_6_legacy_sampler_name_is_split():
    pasted = paste(A1111_1_6)
    assert (pasted.fields["sampler_name"], pasted.fields["scheduler"]) == ("DPM++ 2M SDE", "Karras")
    assert a1111_version(parse_infotext(A1111_1_6)) == (1, 6, 0)


def test_a1111_before_1_9_plain_sampler_keeps_its_plain_schedule():
    # Automatic would mean Karras for DPM++ 2M today; in 1.8 plain "DPM++ 2M" was not Karras.
    assert paste(A1111_1_8_PLAIN).fields["scheduler"] == "Uniform"
    newer = A1111_1_8_PLAIN.replace("v1.8.0", "v1.9.0")
    assert paste(newer).fields["scheduler"] == "Automatic"


def test_a1111_2022_without_version_or_model_name():
    p = parse_infotext(A1111_2022)
    assert p["Model hash"] == "925997e9" and "Model" not in p and "Version" not in p
    pasted = paste(A1111_2022)
    assert pasted.fields["batch_size"] == 4 and pasted.fields["scheduler"] == "Automatic"
    assert pasted.fields["clip_skip"] == 2 and "ENSD: 31337" in pasted.notes[0]


def test_forge_flux_keys_are_kept_and_unknown_schedule_falls_back():
    p = parse_infotext(FORGE_FLUX)
    assert p["Prompt"] == 'a neon sign that says "open late", rainy street'
    assert p["Distilled CFG Scale"] == "3.5" and p["Module 3"] == "t5xxl_fp16"
    assert p["Diffusion in Low Bits"] == "Automatic (fp16 LoRA)"
    assert writer(p) == "Forge" and a1111_version(p) == (1, 10, 1)
    pasted = paste(FORGE_FLUX)
    assert pasted.fields["sampler_name"] == "Euler" and pasted.fields["scheduler"] == "Automatic"
    assert any("'Simple' is not available" in n for n in pasted.notes)
    assert "Distilled CFG Scale: 3.5" in next(n for n in pasted.notes if n.startswith("Not applied"))


def test_forge_beta_schedule_notes_only_non_default_parameters():
    pasted = paste(FORGE_BETA)
    assert pasted.fields["scheduler"] == "Beta"
    unapplied = next(n for n in pasted.notes if n.startswith("Not applied"))
    assert "Beta schedule alpha: 0.5" in unapplied and "Beta schedule beta" not in unapplied


def test_sdnext_default_sampler_is_skipped_with_a_note():
    p = parse_infotext(SDNEXT)
    assert p["App"] == "SD.Next" and p["Operations"] == "txt2img" and p["Parser"] == "Full parser"
    assert writer(p) == "SD.Next" and a1111_version(p) is None
    pasted = paste(SDNEXT)
    assert "sampler_name" not in pasted.fields and "scheduler" not in pasted.fields
    assert (pasted.fields["width"], pasted.fields["height"], pasted.fields["cfg_scale"]) == (1024, 1024, 6.0)
    assert any("'Default' is not available" in n for n in pasted.notes)
    assert not any("RNG" in n for n in pasted.notes)  # no A1111 default for other programs


def test_fooocus_a1111_scheme():
    p = parse_infotext(FOOOCUS_A1111)
    assert p["ADM Guidance"] == "(1.5, 0.8, 0.3)" and p["Styles"].startswith("['Fooocus V2'")
    pasted = paste(FOOOCUS_A1111)
    assert (pasted.fields["sampler_name"], pasted.fields["scheduler"]) == ("DPM++ 2M SDE", "Karras")
    assert (pasted.fields["width"], pasted.fields["height"], pasted.fields["steps"]) == (1152, 896, 30)
    assert "seed" not in pasted.fields  # Fooocus seeds go up to 2**63; Atelier's to 2**32 - 1
    assert any(n.startswith("Seed '1234567890123456' skipped") for n in pasted.notes)


def test_civitai_unquoted_json_value():
    p = parse_infotext(CIVITAI)
    assert p["Hashes"] == '{"vae": "c6a580b13a", "model": "6ce0161689"}'
    assert p["Template"] == "a watercolor owl" and p["Version"] == "v1.9.4"


@pytest.mark.parametrize("line, expected", [
    ('Note: "a \\"quoted\\" word, here", Steps: 2', {"Note": 'a "quoted" word, here', "Steps": "2"}),
    ('ControlNet 0: "Module: canny, Model: control_v11p [d14c016b], Weight: 1", Steps: 3',
     {"ControlNet 0": "Module: canny, Model: control_v11p [d14c016b], Weight: 1", "Steps": "3"}),
    ('Broken: "no end, Steps: 4', {"Broken": '"no end', "Steps": "4"}),
    ("Tiling, Steps: 5, Seed:  6", {"Steps": "5", "Seed": "6"}),
    ("Model: a:b, Steps: 7", {"Model": "a:b", "Steps": "7"}),
    ('Path: "C:\\\\models\\\\x", Steps: 8', {"Path": "C:\\models\\x", "Steps": "8"}),
    ("Steps: 9, Steps: 10", {"Steps": "10"}),
])
def test_params_line_edge_cases(line, expected):
    p = parse_infotext(f"prompt\n{line}, A: 1, B: 2")
    for key, value in expected.items():
        assert p[key] == value, key


def test_windows_line_ends_and_nul_padding():
    text = "a cat\r\nNegative prompt: dog\r\nSteps: 3, Sampler: Euler, Seed: 1\x00\x00"
    p = parse_infotext(text)
    assert (p["Prompt"], p["Negative prompt"], p["Seed"]) == ("a cat", "dog", "1")


def test_prompt_only_text_maps_prompt_and_nothing_else():
    pasted = paste("just a prompt, with: a colon")
    assert pasted.fields == {"prompt": "just a prompt, with: a colon", "negative_prompt": ""}
    assert not pasted.has_parameters and not pasted.notes


def test_bad_values_are_skipped_with_a_note_never_raised():
    pasted = paste("p\nSteps: many, Sampler: Restart, CFG scale: 99, Seed: 1, Size: 100x64")
    assert pasted.fields == {"prompt": "p", "negative_prompt": "", "seed": 1, "height": 64,
                             "clip_skip": 1, "emphasis": "Original",  # A1111's values for missing keys
                             "hires": None, "refiner": None,  # none of their keys: both off (A1111 unticks them)
                             "subseed_strength": 0.0, "seed_resize_from_w": 0, "seed_resize_from_h": 0,  # no variation
                             "sd_vae_decode_method": "Full", "sd_vae_encode_method": "Full"}
    notes = " ".join(pasted.notes)
    for part in ("Steps 'many' skipped", "CFG scale '99' skipped", "Width '100' skipped: must be a multiple of 8",
                 "Sampler 'Restart' is not available"):
        assert part in notes


def _random_text(rng: random.Random) -> str:
    pieces = ["a", "fox", ",", ":", '"', "\\", "\n", " ", "é", "猫", "{", "[", "}", "x: y", "Negative", "'", "\t"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))


def test_round_trip_of_every_field_atelier_writes():
    """format -> parse -> paste gives back every request field Atelier writes (fuzzed values)."""
    rng = random.Random(0)
    for _ in range(300):
        model = _random_text(rng).strip() or "m"
        sampler = rng.choice(samplers.SAMPLERS)
        schedules = [s.label for s in sampler.supported_schedules()]
        ctx = SimpleNamespace(loaded=SimpleNamespace(record=SimpleNamespace(short_hash="0123456789", name=model)),
                              prompt_params={}, vae_params={}, hooks=None)
        request = Txt2ImgRequest(
            clip_skip=rng.randint(1, 12), emphasis=rng.choice(EMPHASIS_MODES),
            prompt=(_random_text(rng) + "p").strip(), negative_prompt=_random_text(rng).strip(),
            sampler_name=sampler.name, scheduler=rng.choice(["Automatic", *schedules]), steps=rng.randint(1, 150),
            cfg_scale=rng.choice([0.0, 1.5, 7.0, 12.25, 30.0]), width=8 * rng.randint(8, 256),
            height=8 * rng.randint(8, 256), seed=rng.randint(0, 2**32 - 1), batch_size=rng.randint(1, 8))
        params = infotext_params(request, ctx, request.seed, 0)
        text = format_infotext(request.prompt, request.negative_prompt, params)
        parsed = parse_infotext(text)
        for key, value in params.items():
            if isinstance(value, float):
                assert float(parsed[key]) == value, key
            else:
                assert parsed[key] == str(value), key
        if "\nNegative prompt:" in request.prompt or request.prompt.startswith("Negative prompt:"):
            continue  # ambiguous in the format itself (A1111 reads it the same way)
        assert parsed["Prompt"] == request.prompt and parsed["Negative prompt"] == request.negative_prompt
        back = to_txt2img_request(paste_parameters(parsed), Txt2ImgRequest(n_iter=3))
        resolved = params["Schedule type"]
        assert back == Txt2ImgRequest(**{**request.to_dict(), "scheduler": resolved, "n_iter": 3}), text


def test_garbage_never_raises():
    rng = random.Random(1)
    keys = ["Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Batch size", "Model", "Version", "RNG",
            "Clip skip", "Hashes", "Scheduler", "Lora hashes"]
    for _ in range(300):
        parts = [f"{rng.choice(keys)}: {_random_text(rng)}" for _ in range(rng.randint(0, 8))]
        text = _random_text(rng) + "\n" + ", ".join(parts) + rng.choice(["", ", Size: 0x99999", ", Seed: nan"])
        pasted = paste(text)
        to_txt2img_request(pasted, Txt2ImgRequest()).validate()  # whatever was pasted is valid
