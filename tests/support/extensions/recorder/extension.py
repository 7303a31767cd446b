"""Uses every hook point and records each event in EVENTS (tests read it through sys.modules)."""

from dataclasses import replace

from pipelines.extension_api import (
    API_VERSION,
    ExtensionContext,
    Field,
    HookPoint,
    JobChange,
    Option,
    Route,
    Section,
    StepChange,
    Tab,
)

from . import helper  # an extension may import its own modules relatively

api_version = API_VERSION
EVENTS: list[tuple] = []


def before_job(event):
    EVENTS.append(("before_job", event.request.prompt, dict(event.args)))
    tag = event.args.get("tag", "")
    if not tag:
        return None
    return JobChange(request=replace(event.request, prompt=f"{event.request.prompt} {tag}"),
                     infotext={"Recorder": tag})


def step_end(event):
    EVENTS.append(("step_end", event.step, event.total, event.sigma, tuple(event.latents.shape)))
    if event.args.get("stop_after", -1) == event.step:
        return StepChange(stop=True)
    if event.args.get("zero_latents"):
        return StepChange(latents=event.latents * 0)
    return None


def register(ctx: ExtensionContext) -> None:
    ctx.add_section(Section("Recorder", (
        Field("tag", "Tag added to the prompt", "text", ""),
        Field("stop_after", "Stop after step", "number", -1, minimum=-1, maximum=150),
        Field("zero_latents", "Zero the latents", "checkbox", False),
    )))
    ctx.on(HookPoint.APP_STARTED, lambda e: EVENTS.append(("app_started", e.url)))
    ctx.on(HookPoint.MODEL_LOADED, lambda e: EVENTS.append(("model_loaded", e.name, e.architecture)))
    ctx.on(HookPoint.BEFORE_JOB, before_job)
    ctx.on(HookPoint.STEP_END, step_end)
    ctx.on(HookPoint.IMAGE_SAVED, lambda e: EVENTS.append(("image_saved", e.path, e.mode, e.infotext)))
    ctx.on(HookPoint.AFTER_JOB, lambda e: EVENTS.append(("after_job", len(e.result.images), e.result.interrupted)))
    ctx.add_option(Option("recorder_greeting", "Recorder greeting", "hello"))
    ctx.add_route(Route("/events", lambda: {"count": len(EVENTS), "greeting": ctx.option("recorder_greeting")}))
    ctx.add_tab(Tab("Recorder", helper.build_tab))
