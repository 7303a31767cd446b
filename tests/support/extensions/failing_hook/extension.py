"""Fails in the hook its section value names."""

from pipelines.extension_api import Field, HookPoint, Section

api_version = 1


def fail_if(point):
    def hook(event):
        if event.args.get("fail_in") == point:
            raise RuntimeError(f"{point} went wrong")
    return hook


def register(ctx):
    ctx.add_section(Section("Failing hook", (Field("fail_in", "Fail in", "dropdown", "nothing",
                                                   choices=("nothing", "before_job", "step_end", "after_job")),)))
    for point in (HookPoint.BEFORE_JOB, HookPoint.STEP_END, HookPoint.AFTER_JOB):
        ctx.on(point, fail_if(point.value))
