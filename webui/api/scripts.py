"""Scripts and extensions over HTTP: ``script_name``/``script_args`` and ``alwayson_scripts`` on txt2img and
img2img, ``GET /scripts`` and ``/script-info`` (A1111's shapes), and each extension's own routes under
``/extensions/<name>/``.

- ``script_name`` names a script by title, case-insensitive ("x/y/z plot"); unknown -> 422 naming it.
  ``script_args`` is a list (A1111's positional layout where the script maps it, e.g. the X/Y/Z plot;
  otherwise the script's fields in order) or an object by field name.
- ``alwayson_scripts`` maps an extension (its name or its section's title) to its section values:
  ``{"CFG Rescale": {"args": [0.7]}}`` (A1111's shape; a list in field order) or ``{"cfg_rescale":
  {"phi": 0.7}}`` (by name). Unknown names and bad values -> 422 naming ``alwayson_scripts.<name>.<field>``.
- A failing extension hook -> 500 with ``error: "ExtensionError"`` and a detail naming the extension.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from pipelines.context import AppContext
from pipelines.extension_api import Field
from pipelines.jobs import JobOwner
from pipelines.results import GenerationResult
from webui.api.errors import ApiRoute
from webui.api.models import ApiModel, ProcessingAPI, ScriptsList

MODES = ("txt2img", "img2img")


class ScriptArg(ApiModel):
    """One input of a script (A1111's ``ScriptArg``), plus ``name``: the key Atelier reads it by."""

    name: str
    label: str
    value: Any = None
    minimum: Any = None
    maximum: Any = None
    step: Any = None
    choices: list[Any] | None = None


class ScriptInfo(ApiModel):
    name: str
    is_alwayson: bool
    is_img2img: bool
    args: list[ScriptArg]


def _arg(field: Field) -> ScriptArg:
    return ScriptArg(name=field.name, label=field.label, value=field.default, minimum=field.minimum,
                     maximum=field.maximum, step=field.step, choices=list(field.choices) or None)


def script_infos(ctx: AppContext) -> list[ScriptInfo]:
    """Every script and every extension section, once per mode it serves (as A1111 lists them)."""
    infos = []
    for mode in MODES:
        for _, script in ctx.extensions.scripts(mode):
            infos.append(ScriptInfo(name=script.title.lower(), is_alwayson=False, is_img2img=mode == "img2img",
                                    args=[_arg(f) for f in script.fields]))
        for _, section in ctx.extensions.sections(mode):
            infos.append(ScriptInfo(name=section.title.lower(), is_alwayson=True, is_img2img=mode == "img2img",
                                    args=[_arg(f) for f in section.fields]))
    return infos


def run_generation(ctx: AppContext, body: ProcessingAPI, request: Any, owner: JobOwner) -> GenerationResult:
    """The job a txt2img/img2img body asks for, as ``owner``'s (named by ``force_task_id`` when sent): its
    script when ``script_name`` is set, else one engine run; the always-on sections' values go to the hooks
    either way."""
    extension_args = ctx.extensions.job_args(body.alwayson_scripts, mode=request.mode)
    task_id = body.force_task_id or None
    if body.script_name:
        return ctx.scripts.run(body.script_name, request, body.script_args, extension_args=extension_args,
                               owner=owner, task_id=task_id)
    return ctx.engine.generate(request, extension_args=extension_args, owner=owner, task_id=task_id)


def add_script_routes(router: APIRouter, ctx: AppContext) -> None:
    @router.get("/scripts", response_model=ScriptsList)
    def scripts() -> ScriptsList:
        """The scripts (selectable and always-on, lower-case as in A1111) each mode has."""
        names = {mode: [s.title.lower() for _, s in ctx.extensions.scripts(mode)]
                 + [s.title.lower() for _, s in ctx.extensions.sections(mode)] for mode in MODES}
        return ScriptsList(**names)

    @router.get("/script-info", response_model=list[ScriptInfo])
    def script_info() -> list[ScriptInfo]:
        """Each script's inputs: label, default value, range, choices, and the name Atelier reads it by."""
        return script_infos(ctx)


def mount_extension_routes(app: FastAPI | APIRouter, ctx: AppContext, dependencies: list[Any] | None = None) -> None:
    """Each extension's routes under ``/extensions/<name>``, with the API's login when it has one; errors in
    A1111's JSON shape (a handler's exception is a 500 that names nothing of the server)."""
    routes = ctx.extensions.routes()
    if not routes:
        return
    router = APIRouter(route_class=ApiRoute, dependencies=dependencies or [], tags=["extensions"])
    for name, route in routes:
        path = "/" + route.path.lstrip("/")
        router.add_api_route(f"/extensions/{name}{path}", route.handler, methods=list(route.methods),
                             name=f"{name}:{path}")
    app.include_router(router)
