import diffusers
import pytest

from pipelines import samplers
from pipelines.errors import ValidationError
from tests.support.samplers import REQUIRED_SAMPLERS

SD15_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "skip_prk_steps": True, "set_alpha_to_one": False, "steps_offset": 1, "prediction_type": "epsilon",
    "use_karras_sigmas": True,  # a model config may carry flags; the menu choice must win
}


@pytest.mark.parametrize("name", REQUIRED_SAMPLERS)
def test_every_required_sampler_builds_its_diffusers_scheduler(name):
    spec, schedule = samplers.resolve(name, "Automatic")
    scheduler = samplers.build_scheduler(SD15_SCHEDULER_CONFIG, spec, schedule)
    assert type(scheduler).__name__ == spec.scheduler_class
    scheduler.set_timesteps(10)
    assert len(scheduler.timesteps) >= 10


def test_pndm_is_reachable_under_its_diffusers_name():
    assert samplers.resolve("PNDM")[0].name == "PLMS"


def test_schedule_type_turns_on_only_the_chosen_sigmas():
    spec, schedule = samplers.resolve("Euler", "Exponential")
    sched = samplers.build_scheduler(SD15_SCHEDULER_CONFIG, spec, schedule)
    assert sched.config.use_exponential_sigmas and not sched.config.use_karras_sigmas
    spec, schedule = samplers.resolve("Euler", "Uniform")
    sched = samplers.build_scheduler(SD15_SCHEDULER_CONFIG, spec, schedule)
    assert not sched.config.use_karras_sigmas


def test_automatic_resolves_to_the_samplers_default_like_a1111():
    assert samplers.resolve("DPM++ 2M", "Automatic")[1].label == "Karras"
    assert samplers.resolve("Euler a", "Automatic")[1].label == "Uniform"


def test_legacy_combined_name_is_split():
    spec, schedule = samplers.resolve("DPM++ 2M Karras", "Automatic")
    assert (spec.name, schedule.label) == ("DPM++ 2M", "Karras")
    assert samplers.resolve("k_euler_a")[0].name == "Euler a"


def test_dpmpp_2m_sde_uses_the_sde_algorithm():
    spec, schedule = samplers.resolve("DPM++ 2M SDE")
    sched = samplers.build_scheduler(SD15_SCHEDULER_CONFIG, spec, schedule)
    assert isinstance(sched, diffusers.DPMSolverMultistepScheduler)
    assert sched.config.algorithm_type == "sde-dpmsolver++"


def test_unknown_sampler_names_the_field():
    with pytest.raises(ValidationError) as err:
        samplers.resolve("Nope")
    assert err.value.field == "sampler_name" and "Euler a" in err.value.message


def test_unsupported_schedule_for_sampler_is_refused():
    with pytest.raises(ValidationError, match="not available for sampler 'DDIM'") as err:
        samplers.resolve("DDIM", "Karras")
    assert err.value.field == "scheduler"
