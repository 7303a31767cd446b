"""webui.server.launch_checked: Gradio's start-up check timing out on a busy machine starts the server again;
any other launch error, or the check failing every time, is raised."""

from __future__ import annotations

import pytest

from webui.server import STARTUP_CHECK_FAILED, launch_checked


class Launcher:
    """Stands in for a Blocks whose launch fails ``failures`` times with ``error`` (only the retry is tested)."""

    def __init__(self, failures: int, error: str) -> None:
        self.failures, self.error = failures, error
        self.launches = self.closes = 0

    def launch(self, **kwargs):
        self.launches += 1
        if self.launches <= self.failures:
            raise ValueError(self.error)
        return None, "http://127.0.0.1:1/", None

    def close(self) -> None:
        self.closes += 1


def test_a_timed_out_startup_check_starts_again():
    demo = Launcher(2, f"When {STARTUP_CHECK_FAILED}, a shareable link must be created.")
    assert launch_checked(demo, server_port=1)[1] == "http://127.0.0.1:1/"
    assert (demo.launches, demo.closes) == (3, 2)


@pytest.mark.parametrize("failures, error", [(3, f"When {STARTUP_CHECK_FAILED}, ..."), (1, "port in use")])
def test_other_errors_and_a_check_failing_every_time_are_raised(failures, error):
    demo = Launcher(failures, error)
    with pytest.raises(ValueError, match=error.split(",")[0]):
        launch_checked(demo)
    assert demo.launches == (3 if failures == 3 else 1)
