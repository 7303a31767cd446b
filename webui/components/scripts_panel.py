"""The extensions' part of the txt2img and img2img tabs: their sections (accordions) and the Scripts dropdown
(A1111's "Script" menu), each script's inputs shown while it is picked.

A tab adds :meth:`ScriptsPanel.named` to its Generate events' ``inputs_kwargs`` and hands the values to
:meth:`ScriptsPanel.take`, which removes them and returns how to run the job: the picked script through
``ctx.scripts``, else one engine run, with the sections' values reaching the hooks by name either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.context import AppContext
from pipelines.extension_host.scripts import NONE
from pipelines.jobs import JobOwner
from pipelines.progress import ProgressFn
from pipelines.results import GenerationResult
from webui.components.extension_sections import (
    SCRIPT_PREFIX,
    SECTION_PREFIX,
    build_sections,
    fields_inputs,
    grouped,
)
from webui.errors import user_error

SCRIPT_NAME = "script_name"
Run = Callable[[Any, ProgressFn, JobOwner | None], GenerationResult]  # (request, report, owner) -> result


@dataclass(frozen=True)
class ScriptsPanel:
    ctx: AppContext
    mode: str
    inputs: dict[str, Component]  # keyword -> component: the sections', "script_name", the scripts'

    def named(self) -> dict[str, Component]:
        return dict(self.inputs)

    def take(self, values: dict[str, Any]) -> Run:
        """Remove this panel's values from ``values`` and return the job's run; bad values raise ``gr.Error``."""
        mine = {name: values.pop(name) for name in list(values) if name in self.inputs}
        registry, scripts = self.ctx.extensions, self.ctx.scripts
        sections = [(name, s.fields) for name, s in registry.sections(self.mode)]
        title = mine.get(SCRIPT_NAME) or NONE
        try:
            extension_args = registry.job_args(grouped(SECTION_PREFIX, mine, sections), mode=self.mode)
            if title == NONE:
                return lambda job, report, owner: self.ctx.engine.generate(job, on_progress=report, owner=owner,
                                                                           extension_args=extension_args)
            extension, script = scripts.find(title, self.mode)
            args = scripts.arguments(script, grouped(SCRIPT_PREFIX, mine, [(extension, script.fields)]).get(
                extension, {}), self.mode)
        except Exception as exc:
            raise user_error(exc) from exc
        return lambda job, report, owner: scripts.run(title, job, args, on_progress=report, owner=owner,
                                                      extension_args=extension_args)


def build(ctx: AppContext, mode: str) -> ScriptsPanel:
    """The sections' accordions, then the Scripts dropdown with one hidden group of inputs per script."""
    inputs = build_sections(ctx, mode)
    scripts = ctx.extensions.scripts(mode)
    dropdown = gr.Dropdown([NONE, *(s.title for _, s in scripts)], value=NONE, label="Script",
                           elem_id=f"{mode}_script")
    inputs[SCRIPT_NAME] = dropdown
    groups = []
    for extension, script in scripts:
        with gr.Group(visible=False, elem_id=f"{mode}_script_{extension}") as group:
            inputs.update(fields_inputs(SCRIPT_PREFIX, extension, script.fields, mode))
        groups.append((script.title, group))
    if groups:
        dropdown.change(lambda title: [gr.Group(visible=title == t) for t, _ in groups], dropdown,
                        [g for _, g in groups], queue=False, api_name=False)
    return ScriptsPanel(ctx, mode, inputs)
