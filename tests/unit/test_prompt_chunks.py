"""Tokenization and 75-token chunking (reference section 2) with the tiny real CLIP tokenizer."""

from __future__ import annotations

import pytest
from transformers import CLIPTokenizer

from pipelines.errors import ValidationError
from pipelines.prompts.chunks import (
    CHUNK_LENGTH,
    EMBEDDING_PLACEHOLDER_ID,
    EmbeddingSlot,
    TokenCount,
    chunk_pieces,
    count_tokens,
    empty_chunk,
    token_capacity,
    tokenize_prompt,
)
from pipelines.prompts.emphasis import PromptPiece
from tests.support.tiny_models import write_clip_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(tmp_path_factory.mktemp("tokenizer"))))


@pytest.fixture(scope="module")
def sd2_tokenizer(tmp_path_factory) -> CLIPTokenizer:
    """Pads with "!" instead of EOS, like SD2's and SDXL's second tokenizer."""
    folder = write_clip_tokenizer(tmp_path_factory.mktemp("tokenizer2"))
    return CLIPTokenizer.from_pretrained(str(folder), pad_token="!")


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def word_id(tokenizer, word: str) -> int:
    (token,) = ids_of(tokenizer, word)
    return token


def test_plain_prompt_is_the_tokenizers_padded_input(tokenizer):
    for prompt in ["a cat and a dog", "the cat, the dog", ""]:
        (chunk,) = tokenize_prompt(prompt, tokenizer).chunks
        expected = tokenizer(prompt, padding="max_length", max_length=77, truncation=True)["input_ids"]
        assert list(chunk.ids) == expected
        assert chunk.weights == (1.0,) * CHUNK_LENGTH


def test_sd2_style_padding(sd2_tokenizer):
    (chunk,) = tokenize_prompt("a cat", sd2_tokenizer).chunks
    expected = sd2_tokenizer("a cat", padding="max_length", max_length=77, truncation=True)["input_ids"]
    assert list(chunk.ids) == expected
    pad = sd2_tokenizer.convert_tokens_to_ids("!")
    assert sd2_tokenizer.pad_token_id == pad != sd2_tokenizer.eos_token_id
    assert chunk.ids[3] == sd2_tokenizer.eos_token_id
    assert chunk.ids[4:] == (pad,) * 73


def test_tokens_carry_their_pieces_weight(tokenizer):
    (chunk,) = tokenize_prompt("a (cat:1.5) [dog]", tokenizer).chunks
    cat, dog, a = word_id(tokenizer, "cat"), word_id(tokenizer, "dog"), word_id(tokenizer, "a")
    assert chunk.ids[:5] == (tokenizer.bos_token_id, a, cat, dog, tokenizer.eos_token_id)
    assert chunk.weights[:5] == (1.0, 1.0, 1.5, 1 / 1.1, 1.0)
    assert chunk.length == 3


def test_empty_prompt_is_one_empty_chunk(tokenizer):
    result = tokenize_prompt("", tokenizer)
    assert len(result.chunks) == 1
    assert result.chunks[0] == empty_chunk(tokenizer)
    assert result.chunks[0].ids == (tokenizer.bos_token_id,) + (tokenizer.eos_token_id,) * 76
    assert result.token_count == 0
    assert count_tokens("", tokenizer) == TokenCount(0, 75)


def test_chunks_of_75(tokenizer):
    result = tokenize_prompt("a " * 75, tokenizer)
    assert len(result.chunks) == 1
    assert result.chunks[0].length == 75
    assert result.chunks[0].ids[-1] == tokenizer.eos_token_id
    result = tokenize_prompt("a " * 76, tokenizer)
    assert [chunk.length for chunk in result.chunks] == [75, 1]
    assert result.token_count == 76
    assert all(len(chunk.ids) == len(chunk.weights) == CHUNK_LENGTH for chunk in result.chunks)
    result = tokenize_prompt("a " * 200, tokenizer)
    assert [chunk.length for chunk in result.chunks] == [75, 75, 50]


def test_comma_backtrack_moves_the_words_after_a_close_comma(tokenizer):
    comma = word_id(tokenizer, ",")
    prompt = "a " * 60 + ", " + "b " * 20  # comma at position 60 of the chunk: 15 tokens back
    result = tokenize_prompt(prompt, tokenizer)
    assert [chunk.length for chunk in result.chunks] == [61, 20]
    first, second = result.chunks
    assert first.ids[61] == comma and first.ids[62] == tokenizer.eos_token_id
    assert second.ids[1:21] == (word_id(tokenizer, "b"),) * 20
    assert result.token_count == 75 + 20


def test_comma_backtrack_limit_and_setting(tokenizer):
    far = "a " * 50 + ", " + "b " * 30  # comma 25 tokens back from the end of the chunk
    assert [c.length for c in tokenize_prompt(far, tokenizer).chunks] == [75, 6]
    edge = "a " * 55 + ", " + "b " * 30  # exactly 20 back: still moved
    assert [c.length for c in tokenize_prompt(edge, tokenizer).chunks] == [56, 30]
    near = "a " * 60 + ", " + "b " * 20
    assert [c.length for c in tokenize_prompt(near, tokenizer, comma_backtrack=0).chunks] == [75, 6]
    assert [c.length for c in tokenize_prompt(far, tokenizer, comma_backtrack=30).chunks] == [51, 30]
    with pytest.raises(ValidationError) as err:
        tokenize_prompt("a", tokenizer, comma_backtrack=-1)
    assert err.value.field == "comma_backtrack"


def test_comma_that_fills_a_chunk_starts_the_next_one(tokenizer):
    result = tokenize_prompt("a " * 75 + ", b", tokenizer)
    assert [c.length for c in result.chunks] == [75, 2]
    assert result.chunks[1].ids[1] == word_id(tokenizer, ",")


def test_comma_token_is_the_tokenizers_comma(tokenizer):
    assert word_id(tokenizer, ",") == tokenizer.convert_tokens_to_ids(",</w>")


def test_break_ends_a_chunk(tokenizer):
    result = tokenize_prompt("a cat BREAK a dog", tokenizer)
    assert [c.length for c in result.chunks] == [2, 2]
    assert result.chunks[0] == tokenize_prompt("a cat", tokenizer).chunks[0]
    assert result.chunks[1] == tokenize_prompt("a dog", tokenizer).chunks[0]
    assert result.token_count == 77
    assert count_tokens("a cat BREAK a dog", tokenizer) == TokenCount(77, 150)


def test_break_at_start_and_end(tokenizer):
    start = tokenize_prompt("BREAK a cat", tokenizer)
    assert [c.length for c in start.chunks] == [0, 2]
    assert start.chunks[0] == empty_chunk(tokenizer)
    end = tokenize_prompt("a cat BREAK", tokenizer)
    assert [c.length for c in end.chunks] == [2]
    assert end.token_count == 75
    twice = tokenize_prompt("a BREAK BREAK b", tokenizer)
    assert [c.length for c in twice.chunks] == [1, 0, 1]
    only = tokenize_prompt("BREAK", tokenizer)
    assert [c.length for c in only.chunks] == [0]


def test_break_resets_the_comma_backtrack(tokenizer):
    result = tokenize_prompt("a, BREAK " + "b " * 80, tokenizer)
    assert [c.length for c in result.chunks] == [2, 75, 5]


def test_emphasis_none_mode_keeps_brackets_and_break_as_text(tokenizer):
    (chunk,) = tokenize_prompt("(cat) BREAK", tokenizer, emphasis="None").chunks
    expected = tokenizer("(cat) BREAK", padding="max_length", max_length=77)["input_ids"]
    assert list(chunk.ids) == expected
    assert set(chunk.weights) == {1.0}


def test_chunk_pieces_directly(tokenizer):
    pieces = [PromptPiece("a", 2.0), PromptPiece("BREAK", 1.0, is_break=True), PromptPiece("cat", 0.5)]
    result = chunk_pieces(pieces, tokenizer)
    assert [c.weights[1] for c in result.chunks] == [2.0, 0.5]


def test_embedding_takes_its_vector_count(tokenizer):
    result = tokenize_prompt("a cat", tokenizer, embeddings={"cat": 3})
    (chunk,) = result.chunks
    a = word_id(tokenizer, "a")
    assert chunk.ids[:6] == (tokenizer.bos_token_id, a, 0, 0, 0, tokenizer.eos_token_id)
    assert EMBEDDING_PLACEHOLDER_ID == 0
    assert chunk.embeddings == (EmbeddingSlot("cat", 2, 3),)
    assert chunk.length == 4
    assert result.token_count == 4


def test_embedding_weight_and_case(tokenizer):
    (chunk,) = tokenize_prompt("a (CAT:1.3) dog", tokenizer, embeddings={"cat": 2}).chunks
    assert chunk.embeddings == (EmbeddingSlot("cat", 2, 2),)
    assert chunk.weights[2:4] == (1.3, 1.3)
    assert chunk.ids[4] == word_id(tokenizer, "dog")


def test_embedding_matches_whole_words_and_the_longest_name(tokenizer):
    (chunk,) = tokenize_prompt("cats", tokenizer, embeddings={"cat": 1}).chunks
    assert chunk.embeddings == ()
    embeddings = {"cat": 1, "cat dog": 2}
    (chunk,) = tokenize_prompt("cat dog cat", tokenizer, embeddings=embeddings).chunks
    assert chunk.embeddings == (EmbeddingSlot("cat dog", 1, 2), EmbeddingSlot("cat", 3, 1))


def test_embedding_never_straddles_chunks(tokenizer):
    result = tokenize_prompt("a " * 73 + "cat", tokenizer, embeddings={"cat": 4})
    assert [c.length for c in result.chunks] == [73, 4]
    assert result.chunks[1].embeddings == (EmbeddingSlot("cat", 1, 4),)


def test_embedding_moves_with_comma_backtrack(tokenizer):
    result = tokenize_prompt("a " * 60 + ", cat " + "b " * 20, tokenizer, embeddings={"cat": 2})
    assert [c.length for c in result.chunks] == [61, 22]
    assert result.chunks[0].embeddings == ()
    assert result.chunks[1].embeddings == (EmbeddingSlot("cat", 1, 2),)


def test_bad_embedding_sizes_are_refused(tokenizer):
    for vectors in (0, 76, 1.5):
        with pytest.raises(ValidationError):
            tokenize_prompt("cat", tokenizer, embeddings={"cat": vectors})


def test_token_counter(tokenizer):
    assert count_tokens("a cat", tokenizer) == (2, 75)
    assert count_tokens("a " * 75, tokenizer) == (75, 75)
    assert count_tokens("a " * 76, tokenizer) == (76, 150)
    assert count_tokens("a " * 150, tokenizer) == (150, 150)
    assert count_tokens("a " * 151, tokenizer) == (151, 225)
    assert [token_capacity(n) for n in (0, 1, 75, 76)] == [75, 75, 75, 150]


def test_token_counter_counts_the_longest_scheduled_prompt(tokenizer):
    prompt = "[a a a a a a:b:5] cat"
    assert count_tokens(prompt, tokenizer, steps=20) == (7, 75)
    assert count_tokens("[" + "a " * 80 + "|b]", tokenizer, steps=20) == (80, 150)
    assert count_tokens("[b:" + "a " * 80 + ":1]", tokenizer, steps=1) == (1, 75)


def test_size_limit(tokenizer):
    with pytest.raises(ValidationError) as err:
        tokenize_prompt("a" * 100_001, tokenizer, field="negative_prompt")
    assert err.value.field == "negative_prompt"
    with pytest.raises(ValidationError):
        count_tokens("(" * 1_000_000, tokenizer)
