from pipelines.extension_api import HookPoint

api_version = 1


def register(ctx):
    ctx.on(HookPoint.BEFORE_JOB, lambda event: event.request.replace_me)  # added, then dropped with the failure
    raise RuntimeError("register went wrong")
