import pytest

from pipelines.errors import ValidationError
from pipelines.requests import Txt2ImgRequest


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"width": 500}, "width", "multiple of 8"),
        ({"height": 32}, "height", "between 64"),
        ({"steps": 0}, "steps", "between 1"),
        ({"cfg_scale": 99}, "cfg_scale", "between 0"),
        ({"seed": -5}, "seed", "-1 (random)"),
        ({"batch_size": 9}, "batch_size", "between 1"),
        ({"sampler_name": "Bogus"}, "sampler_name", "unknown sampler"),
        ({"scheduler": "Sideways"}, "scheduler", "unknown schedule"),
    ],
)
def test_validate_names_the_bad_field(changes, field, text):
    with pytest.raises(ValidationError) as err:
        Txt2ImgRequest(**changes).validate()
    assert err.value.field == field and text in err.value.message


def test_defaults_are_valid():
    Txt2ImgRequest(prompt="x").validate()
