from pipelines.infotext.codec import format_infotext, parse_infotext

A1111_EXAMPLE = """masterpiece, a (red:1.2) fox, forest
at dawn
Negative prompt: blurry, lowres
bad hands
Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent, Lora hashes: "myLora: 0123456789ab", Version: v1.10.1"""  # noqa: E501 (a real A1111 params line)


def test_reads_a1111_infotext():
    p = parse_infotext(A1111_EXAMPLE)
    assert p["Prompt"] == "masterpiece, a (red:1.2) fox, forest\nat dawn"
    assert p["Negative prompt"] == "blurry, lowres\nbad hands"
    assert p["Steps"] == "20" and p["Sampler"] == "DPM++ 2M" and p["Schedule type"] == "Karras"
    assert (p["Size-1"], p["Size-2"]) == ("512", "768")
    assert p["Lora hashes"] == "myLora: 0123456789ab"
    assert p["Version"] == "v1.10.1" and p["Model hash"] == "6ce0161689"


def test_round_trip_of_what_atelier_writes():
    params = {"Steps": 20, "Sampler": "Euler a", "Schedule type": "Uniform", "CFG scale": 7.5, "Seed": 42,
              "Size": "64x96", "Model hash": "abcdef0123", "Model": "tiny: odd, name", "RNG": "CPU",
              "Version": "Atelier 0.1.0"}
    text = format_infotext("a cat, sitting\non a mat", "dog, \"quoted\"", params)
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "a cat, sitting\non a mat"
    assert parsed["Negative prompt"] == 'dog, "quoted"'
    for key, value in params.items():
        assert parsed[key] == str(value), key
    assert parsed["CFG scale"] == "7.5" and parsed["Size-1"] == "64"


def test_values_with_separators_are_quoted_and_none_dropped():
    text = format_infotext("p", "", {"Steps": 1, "Sampler": "x", "Seed": 1, "Note": "a, b: c", "Skip": None})
    assert text == 'p\nSteps: 1, Sampler: x, Seed: 1, Note: "a, b: c"'


def test_prompt_without_params_line_stays_prompt():
    p = parse_infotext("just a prompt, with: a colon")
    assert p["Prompt"] == "just a prompt, with: a colon" and "Steps" not in p
