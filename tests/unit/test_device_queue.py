"""The device queue on its own: first come first served, one at a time, a size limit, places, cancelling."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.errors import JobCancelledError, QueueFullError
from pipelines.jobs import DeviceQueue, JobOwner, QueuedJob

ALICE, BOB = JobOwner("ui", "alice"), JobOwner("ui", "bob")


def _waiter(queue: DeviceQueue, job: QueuedJob, log: list, places: list | None = None) -> threading.Thread:
    def run() -> None:
        try:
            with queue.turn(job, (lambda ahead, total: places.append((ahead, total))) if places is not None else None):
                log.append(("start", job.task_id))
                time.sleep(0.02)
                log.append(("end", job.task_id))
        except JobCancelledError as exc:
            log.append(("cancelled", job.task_id, str(exc)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_jobs_run_one_at_a_time_in_arrival_order_and_learn_their_place():
    queue, log = DeviceQueue(max_waiting=8, poll_s=0.01), []
    first = QueuedJob("txt2img", ALICE, "t0")
    places: list = []
    with queue.turn(first):  # hold the device while the others line up
        threads = []
        for n in range(1, 5):
            threads.append(_waiter(queue, QueuedJob("txt2img", BOB, f"t{n}"), log, places if n == 4 else None))
            _until(lambda n=n: queue.status().waiting == n)
        assert queue.status(task_id="t3").position == 3 and queue.status(BOB).position == 1
        assert queue.status(ALICE).position is None and queue.running is first
    for thread in threads:
        thread.join(10)
    assert [entry for entry in log if entry[0] == "start"] == [("start", f"t{n}") for n in range(1, 5)]
    starts_and_ends = [entry[0] for entry in log]
    assert starts_and_ends == ["start", "end"] * 4  # never two at once
    assert places[0] == (4, 4) and places[-1][0] == 1  # told its place, then each move forward
    assert queue.status().waiting == 0 and queue.running is None


def test_a_full_queue_refuses_at_once_with_a_retry_estimate():
    queue, log = DeviceQueue(max_waiting=1, poll_s=0.01), []
    with queue.turn(QueuedJob("txt2img", ALICE)):
        thread = _waiter(queue, QueuedJob("txt2img", BOB, "b"), log)
        _until(lambda: queue.status().waiting == 1)
        with pytest.raises(QueueFullError, match="queue is full") as refused:
            with queue.turn(QueuedJob("img2img", BOB)):
                pass
        assert refused.value.retry_after_s >= 1
    thread.join(10)
    with queue.turn(QueuedJob("txt2img", BOB)):  # an idle queue takes a job even at max_waiting 0..1
        pass


def test_cancelling_takes_only_the_owners_waiting_jobs():
    queue, log = DeviceQueue(max_waiting=8, poll_s=0.01), []
    with queue.turn(QueuedJob("txt2img", ALICE, "running")):
        threads = [_waiter(queue, QueuedJob("txt2img", owner, task), log)
                   for owner, task in ((ALICE, "a1"), (BOB, "b1"), (ALICE, "a2"))]
        _until(lambda: queue.status().waiting == 3)
        assert queue.cancel(ALICE, reason="the page was closed") == 2
        _until(lambda: queue.status().waiting == 1)
        assert queue.status(BOB).position == 1
    for thread in threads:
        thread.join(10)
    assert sorted(entry[1] for entry in log if entry[0] == "cancelled") == ["a1", "a2"]
    assert "the page was closed" in next(entry[2] for entry in log if entry[0] == "cancelled")
    assert ("start", "b1") in log
