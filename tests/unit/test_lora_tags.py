"""A1111's LoRA tags: taken out of the prompt text, weights read, the same LoRA twice summed."""

from __future__ import annotations

import pytest

from pipelines.errors import UnsupportedModelError, ValidationError
from pipelines.networks import LoraTag, check_loadable, extract_loras, merge_tags, network_kind, parse_lora_tags


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("<lora:ink>", LoraTag("ink", 1.0, 1.0)),
        ("<lora:ink:0.6>", LoraTag("ink", 0.6, 0.6)),  # one weight: both parts
        ("<lora:ink:0.2:0.8>", LoraTag("ink", 0.2, 0.8)),  # text encoder, then UNet
        ("<lora:ink:1:0>", LoraTag("ink", 1.0, 0.0)),
        ("<lora:ink:-0.5>", LoraTag("ink", -0.5, -0.5)),  # negative weights are allowed (A1111)
        ("<lora:ink:te=0.3>", LoraTag("ink", 0.3, 0.3)),
        ("<lora:ink:unet=0.4>", LoraTag("ink", 1.0, 0.4)),
        ("<lora:ink:0.5:unet=2>", LoraTag("ink", 0.5, 2.0)),
        ("<lora:ink:0.5:te=0.1>", LoraTag("ink", 0.1, 0.1)),  # te= wins, and the UNet follows it (A1111)
        ("<lyco:ink:0.7>", LoraTag("ink", 0.7, 0.7)),  # the LyCORIS extension's spelling
        ("<lora:my style v2.1:0.5>", LoraTag("my style v2.1", 0.5, 0.5)),  # spaces and dots in file names
        ("<lora: ink :0.5>", LoraTag("ink", 0.5, 0.5)),
    ],
)
def test_one_tag(text, tag):
    clean, tags = parse_lora_tags(f"a cat, {text}, at night")
    assert clean == "a cat, , at night"  # cut out exactly, as A1111 does
    assert tags == [tag]


def test_text_without_tags_is_unchanged():
    text = "a (cat:1.2) [dog|fox] <hypernet:old:1> BREAK <notatag"
    assert parse_lora_tags(text) == (text, [])  # other extra-network kinds are not ours


def test_tags_in_order_and_text_kept():
    clean, tags = parse_lora_tags("<lora:a:0.5>a <lora:b>cat<lora:a:0.25>")
    assert clean == "a cat"
    assert tags == [LoraTag("a", 0.5, 0.5), LoraTag("b"), LoraTag("a", 0.25, 0.25)]


def test_same_lora_twice_adds_up():
    merged = merge_tags([LoraTag("a", 0.5, 0.5), LoraTag("b"), LoraTag("a", 0.25, 1.0)])
    assert merged == [LoraTag("a", 0.75, 1.5), LoraTag("b")]


def test_negative_prompt_tags_apply_too():
    loras = extract_loras("a cat <lora:ink:0.5>", "blurry <lora:ink:0.5:0> <lora:sharp>")
    assert loras.prompt == "a cat "
    assert loras.negative_prompt == "blurry  "
    assert loras.tags == (LoraTag("ink", 1.0, 0.5), LoraTag("sharp"))


def test_no_tags():
    loras = extract_loras("a cat", "")
    assert (loras.prompt, loras.negative_prompt, loras.tags) == ("a cat", "", ())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("<lora:ink:lots>", "not a number"),
        ("<lora:ink:1:x>", "UNet weight 'x' is not a number"),
        ("<lora:ink:nan>", "finite"),
        ("<lora:ink:inf>", "finite"),
        ("<lora::1>", "name is missing"),
        ("<lora:>", "name is missing"),
        ("<lora:ink:1:1:8>", "dyn"),
        ("<lora:ink:dyn=8>", "dyn"),
        ("<lora:ink:scale=2>", "unknown argument 'scale'"),
    ],
)
def test_bad_tags_name_the_field(text, words):
    with pytest.raises(ValidationError) as info:
        extract_loras("a cat", f"ugly {text}")
    assert info.value.field == "negative_prompt"
    assert words in info.value.message
    assert text in info.value.message


def test_tag_round_trip():
    for tag in (LoraTag("ink"), LoraTag("ink", 0.5, 0.5), LoraTag("ink", 0.2, 0.8), LoraTag("ink", 1.0, 0.0)):
        assert parse_lora_tags(tag.tag())[1] == [tag]
    assert LoraTag("ink", 0.5, 0.5).tag() == "<lora:ink:0.5>"


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        (["lora_unet_x.lora_down.weight", "lora_unet_x.lora_up.weight", "lora_unet_x.alpha"], "LoRA"),
        (["unet.x.lora_A.weight", "unet.x.lora_B.weight"], "LoRA"),
        (["unet.x.lora.down.weight", "unet.x.lora.up.weight"], "LoRA"),
        (["lora_unet_x.hada_w1_a", "lora_unet_x.hada_w1_b", "lora_unet_x.alpha"], "LoHa (LyCORIS)"),
        (["lora_unet_x.lokr_w1", "lora_unet_x.lokr_w2"], "LoKr (LyCORIS)"),
        (["lora_unet_x.lokr_w1_a", "lora_unet_x.lokr_w1_b"], "LoKr (LyCORIS)"),
        (["lora_unet_x.oft_blocks"], "OFT (LyCORIS)"),
        (["emb_params"], None),
    ],
)
def test_network_kind(keys, kind):
    assert network_kind(keys) == kind


def test_lycoris_is_refused_by_name():
    check_loadable("ink", ["lora_unet_x.lora_down.weight", "lora_unet_x.lora_up.weight"])
    with pytest.raises(UnsupportedModelError, match=r"'ink': LoHa \(LyCORIS\) is not supported"):
        check_loadable("ink", ["lora_unet_x.hada_w1_a"])
    with pytest.raises(UnsupportedModelError, match="no LoRA tensors"):
        check_loadable("ink", ["emb_params"])
