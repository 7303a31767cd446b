"""Prompt encoding (reference sections 2-3) on tiny real SD1.5 and SDXL models, checked against
diffusers' own ``encode_prompt`` and against the encoder's hidden states."""

from __future__ import annotations

import pytest
import torch

from pipelines.errors import ValidationError
from pipelines.prompts.chunks import CHUNK_LENGTH, tokenize_prompt
from pipelines.prompts.encode import (
    PromptEmbeds,
    PromptEncoder,
    encode_prompt,
    encode_prompt_pair,
    encode_prompts,
)
from pipelines.prompts.schedule import build_schedule
from tests.support.tiny_models import save_sd15_folder, save_sdxl_folder

PLAIN = "a cat and a dog, the end"


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    from diffusers import StableDiffusionPipeline

    folder = save_sd15_folder(tmp_path_factory.mktemp("prompt-encode") / "sd15")
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    # A fresh LayerNorm has zero bias, so the random encoder's output has a mean of exactly 0 and
    # "restore the mean" would divide by ~0. A trained CLIP's final norm has a bias; give it one.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        bias = pipe.text_encoder.final_layer_norm.bias
        bias.copy_(torch.randn(bias.shape, generator=generator) * 0.5 + 0.2)
    return pipe


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    from diffusers import StableDiffusionXLPipeline

    folder = save_sdxl_folder(tmp_path_factory.mktemp("prompt-encode") / "sdxl")
    return StableDiffusionXLPipeline.from_pretrained(str(folder), local_files_only=True)


@pytest.fixture(scope="module")
def sd_encoder(sd15) -> PromptEncoder:
    return PromptEncoder.from_pipeline(sd15)


@pytest.fixture(scope="module")
def xl_encoder(sdxl) -> PromptEncoder:
    return PromptEncoder.from_pipeline(sdxl)


def chunk(embeds: PromptEmbeds, index: int) -> torch.Tensor:
    return embeds.embeds[:, index * CHUNK_LENGTH : (index + 1) * CHUNK_LENGTH]


def hidden_states(pipe, prompt: str) -> tuple[torch.Tensor, ...]:
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return pipe.text_encoder(ids.input_ids, output_hidden_states=True).hidden_states


# --- SD1.5 -------------------------------------------------------------------------------------


def test_plain_prompt_equals_diffusers(sd15, sd_encoder):
    with torch.no_grad():
        expected, expected_negative = sd15.encode_prompt(PLAIN, "cpu", 1, True, "blurry, ugly")
    positive, negative = encode_prompt_pair(PLAIN, "blurry, ugly", sd_encoder)
    assert positive.embeds.shape == (1, 77, 32)
    assert torch.equal(positive.embeds, expected)
    assert torch.equal(negative.embeds, expected_negative)
    assert positive.pooled is None and positive.chunks == 1


def test_75_tokens_still_equal_diffusers(sd15, sd_encoder):
    prompt = "a " * 75
    with torch.no_grad():
        expected, _ = sd15.encode_prompt(prompt, "cpu", 1, False)
    assert torch.equal(encode_prompt(prompt, sd_encoder).embeds, expected)


def test_weight_one_is_bit_identical(sd_encoder):
    plain = encode_prompt("a cat", sd_encoder).embeds
    assert torch.equal(encode_prompt("a (cat:1.0)", sd_encoder).embeds, plain)
    assert torch.equal(encode_prompt("a ((cat:1.0):1.0)", sd_encoder).embeds, plain)


def test_weights_change_the_embeddings(sd_encoder):
    plain = encode_prompt("a cat", sd_encoder).embeds
    for prompt in ("a (cat:1.5)", "a (cat)", "a [cat]", "a (cat:0.5)"):
        weighted = encode_prompt(prompt, sd_encoder).embeds
        assert weighted.shape == plain.shape
        assert torch.isfinite(weighted).all()
        assert not torch.equal(weighted, plain), prompt


def test_original_restores_the_mean_and_no_norm_does_not(sd_encoder):
    plain = encode_prompt("a cat", sd_encoder).embeds
    original = encode_prompt("a (cat:1.5)", sd_encoder).embeds
    no_norm = encode_prompt("a (cat:1.5)", sd_encoder, emphasis="No norm").embeds
    weights = torch.ones(77)
    weights[2] = 1.5
    assert torch.allclose(no_norm, plain * weights[None, :, None])
    assert torch.allclose(original.mean(), plain.mean(), atol=1e-6)
    assert torch.allclose(original, no_norm * (plain.mean() / no_norm.mean()))
    assert not torch.allclose(original, no_norm)


def test_ignore_and_none_modes_apply_no_weights(sd_encoder):
    plain = encode_prompt("a cat b", sd_encoder).embeds
    assert torch.equal(encode_prompt("a (cat:1.5) b", sd_encoder, emphasis="Ignore").embeds, plain)
    literal = encode_prompt("a (cat:1.5) b", sd_encoder, emphasis="None").embeds
    assert not torch.equal(literal, plain)  # the brackets are tokens now
    with pytest.raises(ValidationError) as err:
        encode_prompt("a", sd_encoder, emphasis="loud")
    assert err.value.field == "emphasis"


def test_long_prompt_has_chunks_that_change_independently(sd_encoder):
    words = ["a"] * 150
    original = encode_prompt(" ".join(words), sd_encoder)
    assert original.chunks == 2 and original.embeds.shape == (1, 154, 32)
    words[120] = "cat"
    changed = encode_prompt(" ".join(words), sd_encoder)
    assert torch.equal(chunk(changed, 0), chunk(original, 0))
    assert not torch.equal(chunk(changed, 1), chunk(original, 1))


def test_each_chunk_is_encoded_on_its_own(sd_encoder):
    both = encode_prompt("a cat BREAK a dog", sd_encoder)
    assert both.chunks == 2
    assert torch.equal(chunk(both, 0), encode_prompt("a cat", sd_encoder).embeds)
    assert torch.equal(chunk(both, 1), encode_prompt("a dog", sd_encoder).embeds)
    assert encode_prompt("BREAK a cat", sd_encoder).chunks == 2
    assert encode_prompt("a cat BREAK", sd_encoder).chunks == 1


def test_clip_skip_reads_an_earlier_layer_through_the_final_norm(sd15, sd_encoder):
    states = hidden_states(sd15, "a cat")
    with torch.no_grad():
        for skip in (2, 3):
            expected = sd15.text_encoder.final_layer_norm(states[-skip])
            assert torch.equal(encode_prompt("a cat", sd_encoder, clip_skip=skip).embeds, expected)
    skipped = encode_prompt("a cat", sd_encoder, clip_skip=2).embeds
    assert not torch.equal(skipped, encode_prompt("a cat", sd_encoder).embeds)


def test_bad_clip_skip_is_refused(sd_encoder):
    for skip in (0, 6, 1.5, True):
        with pytest.raises(ValidationError) as err:
            encode_prompt("a", sd_encoder, clip_skip=skip)  # type: ignore[arg-type]
        assert err.value.field == "clip_skip"


def test_positive_and_negative_are_padded_with_empty_chunks(sd_encoder):
    positive, negative = encode_prompt_pair("a " * 100, "blurry", sd_encoder)
    assert positive.chunks == negative.chunks == 2
    assert torch.equal(chunk(negative, 0), encode_prompt("blurry", sd_encoder).embeds)
    assert torch.equal(chunk(negative, 1), encode_prompt("", sd_encoder).embeds)
    short, long = encode_prompt_pair("cat", "a " * 160, sd_encoder)
    assert short.chunks == long.chunks == 3


def test_schedule_prompts_encode_once_to_one_length(sd_encoder):
    schedule = build_schedule("[a cat:" + "a " * 90 + ":5]", 10)
    encoded = encode_prompts([*schedule.distinct, ""], sd_encoder)
    assert [e.chunks for e in encoded] == [2, 2, 2]
    assert torch.equal(chunk(encoded[0], 0), encode_prompt("a cat", sd_encoder).embeds)


def test_textual_inversion_vectors_go_where_the_name_is(sd15, sd_encoder):
    table = sd15.text_encoder.get_input_embeddings().weight
    dog = sd15.tokenizer("dog", add_special_tokens=False).input_ids
    vectors = {"myemb": [table[dog].detach().clone()]}
    with_embedding = encode_prompt("a myemb", sd_encoder, embeddings=vectors)
    assert torch.equal(with_embedding.embeds, encode_prompt("a dog", sd_encoder).embeds)
    assert not sd15.text_encoder.get_input_embeddings()._forward_hooks  # the hook is gone again
    two = {"pair": [table[sd15.tokenizer("cat dog", add_special_tokens=False).input_ids].detach().clone()]}
    pair = encode_prompt("a pair", sd_encoder, embeddings=two)
    assert torch.equal(pair.embeds, encode_prompt("a cat dog", sd_encoder).embeds)
    weighted = encode_prompt("a (myemb:1.4)", sd_encoder, embeddings=vectors)
    assert torch.equal(weighted.embeds, encode_prompt("a (dog:1.4)", sd_encoder).embeds)


def test_textual_inversion_shapes_are_checked(sd_encoder):
    with pytest.raises(ValueError):
        encode_prompt("a x", sd_encoder, embeddings={"x": [torch.zeros(1, 31)]})
    with pytest.raises(ValueError):
        encode_prompt("a x", sd_encoder, embeddings={"x": [torch.zeros(1, 32), torch.zeros(1, 32)]})


def test_the_tokenized_chunks_are_what_the_encoder_sees(sd15, sd_encoder):
    (only,) = tokenize_prompt(PLAIN, sd15.tokenizer).chunks
    with torch.no_grad():
        expected = sd15.text_encoder(torch.tensor([only.ids])).last_hidden_state
    assert torch.equal(encode_prompt(PLAIN, sd_encoder).embeds, expected)


# --- SDXL --------------------------------------------------------------------------------------


def test_sdxl_plain_prompt_equals_diffusers(sdxl, xl_encoder):
    with torch.no_grad():
        expected = sdxl.encode_prompt(
            PLAIN, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="ugly"
        )
    positive, negative = encode_prompt_pair(PLAIN, "ugly", xl_encoder)
    assert positive.embeds.shape == (1, 77, 96)  # 32 (CLIP-L) + 64 (OpenCLIP-G) features
    assert positive.pooled is not None and positive.pooled.shape == (1, 32)
    assert torch.equal(positive.embeds, expected[0])
    assert torch.equal(negative.embeds, expected[1])
    assert torch.equal(positive.pooled, expected[2])
    assert torch.equal(negative.pooled, expected[3])


def test_sdxl_clip_skip_matches_diffusers(sdxl, xl_encoder):
    with torch.no_grad():
        expected = sdxl.encode_prompt(
            PLAIN, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False, clip_skip=1
        )
    assert torch.equal(encode_prompt(PLAIN, xl_encoder, clip_skip=2).embeds, expected[0])


def test_sdxl_pooled_comes_from_the_first_chunk(xl_encoder):
    long = encode_prompt("a cat " + "a " * 100, xl_encoder)
    first = encode_prompt("a cat " + "a " * 73, xl_encoder)
    assert long.chunks == 2
    assert torch.equal(long.pooled, first.pooled)
    assert torch.equal(chunk(long, 0), first.embeds)


def test_sdxl_weights_and_empty_negative(xl_encoder):
    plain = encode_prompt("a cat", xl_encoder)
    weighted = encode_prompt("a (cat:1.3)", xl_encoder)
    assert not torch.equal(weighted.embeds, plain.embeds)
    assert torch.equal(weighted.pooled, plain.pooled)  # weights act after the encoder
    assert torch.equal(encode_prompt("a (cat:1.0)", xl_encoder).embeds, plain.embeds)
    positive, negative = encode_prompt_pair("a cat", "", xl_encoder, zero_empty_negative=True)
    assert not negative.embeds.any() and not negative.pooled.any()
    assert negative.embeds.shape == positive.embeds.shape
    _, kept = encode_prompt_pair("a cat", "", xl_encoder)
    assert kept.embeds.any()


def test_sdxl_textual_inversion_uses_one_tensor_per_encoder(sdxl, xl_encoder):
    dog_l = sdxl.tokenizer("dog", add_special_tokens=False).input_ids
    dog_g = sdxl.tokenizer_2("dog", add_special_tokens=False).input_ids
    vectors = {
        "myemb": [
            sdxl.text_encoder.get_input_embeddings().weight[dog_l].detach().clone(),
            sdxl.text_encoder_2.get_input_embeddings().weight[dog_g].detach().clone(),
        ]
    }
    result = encode_prompt("a myemb", xl_encoder, embeddings=vectors)
    expected = encode_prompt("a dog", xl_encoder)
    assert torch.equal(result.embeds, expected.embeds)
    assert torch.equal(result.pooled, expected.pooled)


def test_sdxl_refiner_uses_the_second_encoder_alone(sdxl):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    refiner = StableDiffusionXLImg2ImgPipeline(
        vae=sdxl.vae,
        text_encoder=None,
        text_encoder_2=sdxl.text_encoder_2,
        tokenizer=None,
        tokenizer_2=sdxl.tokenizer_2,
        unet=sdxl.unet,
        scheduler=sdxl.scheduler,
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )
    with torch.no_grad():
        expected = refiner.encode_prompt(
            PLAIN, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="ugly"
        )
    positive, negative = encode_prompt_pair(PLAIN, "ugly", PromptEncoder.from_pipeline(refiner))
    assert positive.embeds.shape == (1, 77, 64)
    assert torch.equal(positive.embeds, expected[0]) and torch.equal(negative.embeds, expected[1])
    assert torch.equal(positive.pooled, expected[2]) and torch.equal(negative.pooled, expected[3])
