"""webui.jobs: a core call run in a worker thread, its progress on the bar, its result or a readable error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import gradio as gr
import pytest

from pipelines.errors import ValidationError
from pipelines.progress import ProgressFn, ProgressUpdate
from webui.jobs import run_job, run_streaming


class Bar:
    """Stands in for gr.Progress: records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, desc: str = "") -> None:
        self.calls.append((fraction, desc))


def two_steps_then(outcome: Any) -> tuple[Callable[[ProgressFn], Any], list[threading.Thread]]:
    """A core call reporting two steps (the second with a preview), then returning ``outcome`` or raising it;
    and the list its thread is recorded in."""
    threads: list[threading.Thread] = []

    def call(report: ProgressFn) -> Any:
        threads.append(threading.current_thread())
        report(ProgressUpdate("txt2img", 1, 2, text="Sampling"))
        report(ProgressUpdate("txt2img", 2, 2, text="Sampling", preview="preview 2"))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return call, threads


def drain(updates) -> tuple[list[Any], Any]:
    """What a generator yields, and what it returns."""
    shown = []
    while True:
        try:
            shown.append(next(updates))
        except StopIteration as done:
            return shown, done.value


def test_updates_move_the_bar_previews_are_yielded_and_the_result_returned():
    call, threads = two_steps_then("the result")
    bar = Bar()
    shown, result = drain(run_streaming(call, bar, error_title="Cannot generate", on_update=lambda u: u.preview))
    assert shown == ["preview 2"]  # the first update made nothing to show
    assert result == "the result"
    assert bar.calls == [(0.5, "Sampling · step 1/2"), (1.0, "Sampling · step 2/2")]
    assert threads and threads[0] is not threading.current_thread()


def test_an_event_function_yields_from_it_then_yields_its_own_final_value():
    call, _ = two_steps_then(3)

    def event(progress: Bar):
        result = yield from run_streaming(call, progress, error_title="Cannot generate",
                                          on_update=lambda u: ("preview", u.step))
        yield ("final", result)

    assert list(event(Bar())) == [("preview", 1), ("preview", 2), ("final", 3)]


def test_run_job_returns_the_result_and_reports_bytes():
    bar = Bar()

    def download(report: ProgressFn) -> str:
        report(ProgressUpdate("download", 2**20, 4 * 2**20, unit="bytes", text="org/name"))
        return "org/name"

    assert run_job(download, bar, error_title="Cannot download") == "org/name"
    assert bar.calls == [(0.25, "org/name: 1.0 / 4.0 MiB")]


def test_a_core_error_is_raised_with_its_message_and_the_events_title():
    call, _ = two_steps_then(ValidationError("hr_scale", "must be a number from 1 to 8, got 9"))
    bar = Bar()
    with pytest.raises(gr.Error) as err:
        drain(run_streaming(call, bar, error_title="Cannot upscale", on_update=lambda u: u.preview))
    assert err.value.title == "Cannot upscale"
    assert err.value.message == "hr_scale: must be a number from 1 to 8, got 9"
    assert len(bar.calls) == 2  # the progress came before the error


def test_a_bug_is_an_internal_error_without_a_traceback():
    call, _ = two_steps_then(KeyError("latents"))
    with pytest.raises(gr.Error) as err:
        run_job(call, Bar(), error_title="Cannot generate")
    assert err.value.title == "Error"
    assert err.value.message.startswith("Internal error (KeyError: 'latents')")
    assert "Traceback" not in err.value.message
