"""The scale-out pieces that need no cluster: ``--ray``'s parsing, replica sizing, the events' round trip into the
front's job state and errors, presses, the queue's slots, and that the embedded default never imports Ray."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from PIL import Image

from pipelines import errors
from pipelines.cluster.control import JobControl, PressReader
from pipelines.cluster.dispatch import _with_paths
from pipelines.cluster.messages import JobFailed, StateSnapshot
from pipelines.cluster.replica import _without_sent_images
from pipelines.cluster.target import local_cpus_per_replica, parse_target
from pipelines.jobs import DeviceQueue, QueuedJob
from pipelines.progress import JobState
from pipelines.results import GeneratedImage, GenerationResult

ROOT = Path(__file__).resolve().parents[2]


def test_ray_targets_parse_and_bad_ones_name_the_flag():
    local = parse_target("local:3")
    assert local.is_local and local.local_replicas == 3
    assert local_cpus_per_replica(local, cpus=8) == 2 and local_cpus_per_replica(local, cpus=2) == 1
    assert local_cpus_per_replica(parse_target("local:2", cpus_per_replica=3), cpus=2) == 3
    assert parse_target(" auto ").address == "auto" and parse_target("ray://10.0.0.5:10001").address.startswith("ray")
    for bad, field in (("local:0", "ray"), ("local:x", "ray"), ("", "ray")):
        with pytest.raises(errors.ValidationError) as caught:
            parse_target(bad)
        assert caught.value.field == field
    with pytest.raises(errors.ValidationError) as caught:
        parse_target("auto", cpus_per_replica=0)
    assert caught.value.field == "ray_cpus_per_replica"


def test_a_joined_cluster_gets_one_replica_per_gpu_else_per_cpu_share():
    pytest.importorskip("ray")  # the test command installs it (requirements-ray.txt)
    from pipelines.cluster.deploy import joined_replicas

    assert joined_replicas(parse_target("auto"), {"CPU": 64.0, "GPU": 8.0}) == (8, {"num_cpus": 1, "num_gpus": 1.0})
    assert joined_replicas(parse_target("auto", gpus_per_replica=2), {"CPU": 64.0, "GPU": 8.0})[0] == 4
    assert joined_replicas(parse_target("auto"), {"CPU": 16.0}) == (4, {"num_cpus": 4, "num_gpus": 0.0})
    assert joined_replicas(parse_target("auto", gpus_per_replica=0, cpus_per_replica=8),
                           {"CPU": 16.0, "GPU": 2.0})[0] == 2
    with pytest.raises(errors.ValidationError, match="not enough"):
        joined_replicas(parse_target("auto", cpus_per_replica=8), {"CPU": 4.0})


def test_a_replicas_error_is_raised_in_the_front_as_the_same_kind():
    rebuilt = JobFailed.of(errors.ValidationError("steps", "must be at least 1")).rebuild()
    assert isinstance(rebuilt, errors.ValidationError) and rebuilt.field == "steps" and "at least 1" in str(rebuilt)
    missing = JobFailed.of(errors.ModelNotFoundError("no model named x")).rebuild()
    assert type(missing) is errors.ModelNotFoundError and str(missing) == "no model named x"
    bug = JobFailed.of(KeyError("oops")).rebuild()
    assert type(bug) is RuntimeError and "KeyError" in str(bug)


def test_presses_are_counted_per_job_and_read_once():
    control, reader = JobControl(), PressReader()
    assert reader.new(control.presses("a")) == (False, 0)
    control.skip("a"), control.skip("a"), control.interrupt("b")
    assert reader.new(control.presses("a")) == (False, 2)
    assert reader.new(control.presses("a")) == (False, 0)
    control.interrupt("a")
    assert reader.new(control.presses("a")) == (True, 0)
    control.forget("a")
    assert control.presses("a") == (0, 0) and control.presses("b") == (1, 0)


def test_a_state_snapshot_mirrors_progress_and_the_preview():
    replica, front = JobState("txt2img"), JobState("txt2img")
    replica.job_count, replica.job_no, replica.sampling_step, replica.sampling_steps = 3, 1, 4, 10
    preview = Image.new("RGB", (8, 8))
    StateSnapshot.of(replica).apply(front, preview)
    assert (front.job_count, front.job_no, front.sampling_step, front.sampling_steps) == (3, 1, 4, 10)
    assert front.current_preview is preview and front.progress == pytest.approx(1.4 / 3)
    StateSnapshot.of(replica).apply(front, None)  # none on the replica (a retry cleared it): none in the front
    assert front.current_preview is None


def test_the_results_stand_in_paths_become_the_fronts_saved_paths(tmp_path):
    image = Image.new("RGB", (8, 8))
    grid = Image.new("RGB", (16, 8))
    result = GenerationResult([GeneratedImage(image, 1, "a", Path("replica-saved/j/1")),
                               GeneratedImage(image, 2, "b", None)],
                              grid=GeneratedImage(grid, 1, "a", Path("replica-saved/j/2")))
    light = _without_sent_images(result)  # what the replica sends at the end: no pixels sent already
    assert light.images[0].image is None and light.images[1].image is image and light.grid.image is None
    saved = {"replica-saved/j/1": (tmp_path / "00001-1.png", image), "replica-saved/j/2": (tmp_path / "g.png", grid)}
    placed = _with_paths(light, saved)
    assert [img.path for img in placed.images] == [tmp_path / "00001-1.png", None]
    assert [img.image for img in placed.images] == [image, image]
    assert placed.grid.path == tmp_path / "g.png" and placed.grid.image is grid


def test_the_queue_runs_one_job_per_slot_and_reports_places_behind_them():
    queue = DeviceQueue(max_waiting=4, poll_s=0.05, slots=2)
    first, second, third = (QueuedJob("txt2img") for _ in range(3))
    release = threading.Event()
    entered: list[QueuedJob] = []

    def run(job: QueuedJob) -> None:
        with queue.turn(job):
            entered.append(job)
            release.wait(10)

    threads = [threading.Thread(target=run, args=(job,)) for job in (first, second)]
    for thread in threads:
        thread.start()
    while len(entered) < 2:
        threading.Event().wait(0.01)
    places: list[tuple[int, int]] = []
    waiter = threading.Thread(target=lambda: _wait(queue, third, places, entered))
    waiter.start()
    while not places:
        threading.Event().wait(0.01)
    assert places[0] == (1, 1) and queue.status().running_count == 2 and third not in entered
    release.set()
    for thread in [*threads, waiter]:
        thread.join(10)
    assert entered[2] is third and queue.status().running_count == 0
    queue.set_slots(1)
    assert queue.slots == 1


def _wait(queue: DeviceQueue, job: QueuedJob, places: list, entered: list) -> None:
    with queue.turn(job, lambda ahead, total: places.append((ahead, total))):
        entered.append(job)


RAY_MODULES = ("ray", "pipelines.cluster.deploy", "pipelines.cluster.dispatch", "pipelines.cluster.replica")


def test_the_embedded_default_never_imports_ray():
    """Only pipelines/cluster's Ray modules import Ray at module level, and nothing outside them imports those at
    module level (launch.py does inside attach_cluster, for --ray): so the default path never loads Ray."""
    offenders = []
    for path in [ROOT / "launch.py", *ROOT.glob("pipelines/**/*.py"), *ROOT.glob("webui/**/*.py"),
                 *ROOT.glob("extensions/**/*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module.removesuffix(".__init__") in RAY_MODULES[1:]:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{module}: {name}" for name in names
                          if any(name == ray or name.startswith(ray + ".") for ray in RAY_MODULES)]
    assert offenders == []
    launch = (ROOT / "launch.py").read_text(encoding="utf-8")
    assert "from pipelines.cluster.deploy import start_cluster" in launch  # the one way in, inside a function


def test_a_bad_ray_flag_stops_launch_with_the_flag_named_before_any_cluster_starts():
    import argparse

    import launch

    args = argparse.Namespace(ray="local:zero", ray_cpus_per_replica=None, ray_gpus_per_replica=None,
                              skip_install=True)
    with pytest.raises(SystemExit, match="--ray: local:N needs a number"):
        launch.attach_cluster(None, args)
    args.ray, args.ray_cpus_per_replica = "auto", 0
    with pytest.raises(SystemExit, match="--ray-cpus-per-replica: must be at least 1"):
        launch.attach_cluster(None, args)
    assert launch.build_parser().parse_args(["--ray", "local:2", "--ray-cpus-per-replica", "1"]).ray == "local:2"


class _Replicas:
    """Stands in for a cluster's devices where only their number matters (no job is run here)."""

    replicas = 2


def test_with_replicas_attached_selecting_a_checkpoint_loads_nothing_in_the_front(app_context):
    engine, selection, store = app_context.engine, app_context.selection, app_context.store
    engine.attach_remote(_Replicas())
    try:
        assert engine.queue.slots == 2
        chosen = selection.select("tiny-sd15-b")
        assert chosen.record.name == selection.current == "tiny-sd15-b" and store.loaded("tiny-sd15-b") is None
        assert "not in memory" in store.status(chosen)
        with pytest.raises(errors.ModelNotFoundError):
            selection.select("no-such-model")
        assert selection.current == "tiny-sd15-b"
    finally:
        engine.attach_remote(None)
    assert engine.queue.slots == 1
    assert selection.select("tiny-sd15").pipeline is not None and store.loaded("tiny-sd15") is not None
