"""pipelines/options.py: typed A1111 options persisted atomically in data_dir/config.json (core, no HTTP)."""

from __future__ import annotations

import json
from functools import partial

import pytest

from pipelines.errors import ModelNotFoundError, ValidationError
from pipelines.networks.vae import check_vae_name
from pipelines.options import OptionsStore, read_config, saved_checkpoint


@pytest.fixture
def store(app_context) -> OptionsStore:
    return app_context.options  # as AppContext builds it: sd_vae names are checked against the model store


def test_defaults_and_the_current_checkpoint(store, app_context):
    values = store.values()
    assert values["sd_model_checkpoint"] == app_context.selection.current == "tiny-sd15"  # not hashed yet: no [hash]
    assert values["samples_format"] == "png" and values["live_previews_enable"] is True
    assert values["show_progress_every_n_steps"] == app_context.settings.live_preview_every
    assert values["outdir_txt2img_samples"] == str(app_context.settings.outputs_dir / "txt2img-images")
    assert not store.path.exists()  # nothing is written until something changes


def test_update_swaps_the_model_and_persists_with_unknown_keys(store, app_context):
    accepted = store.update({"sd_model_checkpoint": "tiny-sd15-b", "sd_checkpoints_limit": 3.0, "ext_key": {"a": 1}})
    assert accepted["sd_model_checkpoint"].startswith("tiny-sd15-b [") and accepted["sd_checkpoints_limit"] == 3
    assert app_context.selection.current == "tiny-sd15-b"
    on_disk = json.loads(store.path.read_text())
    assert on_disk == {"sd_model_checkpoint": accepted["sd_model_checkpoint"], "sd_checkpoints_limit": 3,
                       "ext_key": {"a": 1}}
    assert [p.name for p in store.path.parent.glob("config.json*")] == ["config.json"]  # no temp file left
    again = OptionsStore(app_context.settings, app_context.selection)  # a restart reads them back
    assert again.values()["ext_key"] == {"a": 1} and again.values()["sd_checkpoints_limit"] == 3
    assert saved_checkpoint(app_context.settings.data_dir) == accepted["sd_model_checkpoint"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"live_previews_enable": 1}, "live_previews_enable"),
    ({"sd_checkpoints_limit": True}, "sd_checkpoints_limit"),
    ({"sd_checkpoints_limit": 2.5}, "sd_checkpoints_limit"),
    ({"samples_format": "webp"}, "samples_format"),
    ({"sd_vae": "kl-f8.safetensors"}, "sd_vae"),
    ({"CLIP_stop_at_last_layers": 13}, "CLIP_stop_at_last_layers"),
    ({"emphasis": "Strong"}, "emphasis"),
    ({"outdir_txt2img_samples": "/elsewhere"}, "outdir_txt2img_samples"),
])
def test_bad_values_name_the_key_and_change_nothing(store, changes, field):
    with pytest.raises(ValidationError) as err:
        store.update({"api_useragent": "x", **changes})
    assert err.value.field == field
    assert not store.path.exists() and store.values()["api_useragent"] == ""


def test_values_atelier_cannot_use_in_an_a1111_config_file_read_as_the_default(app_context):
    path = app_context.settings.data_dir / "config.json"
    path.write_text(json.dumps({"samples_format": "jpg", "sd_vae": "kl-f8.safetensors", "CLIP_stop_at_last_layers": 0,
                                "sd_checkpoints_limit": 4, "quicksettings_list": ["sd_model_checkpoint"]}))
    store = OptionsStore(app_context.settings, app_context.selection,
                         vae_check=partial(check_vae_name, app_context.store))
    values = store.values()
    assert (values["samples_format"], values["sd_vae"], values["CLIP_stop_at_last_layers"]) == ("png", "Automatic", 1)
    assert values["sd_checkpoints_limit"] == 4 and values["quicksettings_list"] == ["sd_model_checkpoint"]
    store.update(values)  # what GET shows can always be posted back


def test_fixed_keys_accept_their_value_and_derived_keys_are_ignored(store):
    assert store.check({"randn_source": "CPU", "sd_checkpoint_hash": "abc"}) == {}
    assert store.check({"sd_vae": "None"}, prefix="override_settings.") == {"sd_vae": "None"}
    with pytest.raises(ValidationError, match="override_settings.randn_source"):
        store.check({"randn_source": "GPU"}, prefix="override_settings.")


def test_an_unknown_model_is_refused_before_anything_is_saved(store, app_context):
    with pytest.raises(ModelNotFoundError):
        store.update({"sd_model_checkpoint": "nope", "api_useragent": "x"})
    assert not store.path.exists() and app_context.selection.current == "tiny-sd15"


def test_a_broken_file_is_ignored_and_replaced_on_the_next_change(app_context, caplog):
    path = app_context.settings.data_dir / "config.json"
    path.write_text("{ not json")
    store = OptionsStore(app_context.settings, app_context.selection)
    assert "unreadable options file" in caplog.text and store.values()["api_useragent"] == ""
    store.update({"api_useragent": "bot/1"})
    assert read_config(path) == {"api_useragent": "bot/1"}
    path.write_text("[1, 2]")
    assert read_config(path) == {}


class Unwritable:
    def __str__(self) -> str:
        raise OSError("disk full")


def test_a_failed_write_keeps_the_old_file_and_values(store):
    store.update({"api_useragent": "first"})
    with pytest.raises(OSError, match="disk full"):
        store.update({"api_useragent": "second", "ext_key": Unwritable()})
    assert read_config(store.path) == {"api_useragent": "first"}
    assert store.values()["api_useragent"] == "first" and "ext_key" not in store.values()
    assert [p.name for p in store.path.parent.glob("config.json*")] == ["config.json"]


def test_clip_skip_and_emphasis_are_settings_a_job_reads(store):
    assert store.prompt_settings() == {"clip_skip": 1, "emphasis": "Original"}
    store.update({"CLIP_stop_at_last_layers": 2, "emphasis": "No norm"})
    assert store.prompt_settings() == {"clip_skip": 2, "emphasis": "No norm"}
    overrides = store.check({"CLIP_stop_at_last_layers": 3}, prefix="override_settings.")
    assert store.prompt_settings(overrides) == {"clip_skip": 3, "emphasis": "No norm"}
