"""Where jobs run: the Settings tab's line on the embedded device or the Ray cluster's replicas (``--ray``),
with what each replica holds and the latest placements, from the same status as ``GET /atelier/v1/cluster``."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.context import AppContext

SHOWN_PLACEMENTS = 5


def cluster_summary(ctx: AppContext) -> str:
    """Markdown: embedded, or the cluster's replicas and recent placements."""
    remote = ctx.engine.remote
    if remote is None:
        return f"**Embedded**: every job runs in this process, on `{ctx.store.device}`, one at a time."
    return status_markdown(remote.status())


def status_markdown(status: dict[str, Any]) -> str:
    serve = status.get("serve", {})
    states = ", ".join(f"{count} {state.lower()}" for state, count in serve.get("replica_states", {}).items())
    lines = [f"**Ray cluster** `{status['address']}`: {status['replicas']} engine replicas ({states or 'starting'})."]
    for replica in status.get("known_replicas", []):
        held = ", ".join(f"`{name}`" for name in replica["checkpoints"]) or "no checkpoint"
        state = "running a job" if replica.get("running_job") else "idle" if replica.get("alive", True) else "lost"
        lines.append(f"- replica `{replica['replica_id']}` on {replica['node']} (pid {replica['pid']}): {held}; "
                     f"{replica['jobs_done']} jobs; {state}")
    if status.get("placements"):
        lines.append("\nLatest jobs, newest first:\n")
    for placement in status.get("placements", [])[:SHOWN_PLACEMENTS]:
        loaded = "already loaded" if placement["model_was_loaded"] else "loaded for it"
        lines.append(f"- {placement['mode']} on `{placement['replica_id']}` · `{placement['model'] or '-'}` "
                     f"{loaded} · {placement['outcome']}")
    return "\n".join(lines)


def build(ctx: AppContext) -> None:
    with gr.Accordion("Where jobs run", open=ctx.engine.remote is not None):
        summary = gr.Markdown(cluster_summary(ctx), elem_id="cluster_summary")
        refresh = gr.Button("🔄 Refresh", size="sm", elem_id="cluster_refresh")
    refresh.click(lambda: cluster_summary(ctx), None, summary, api_name="cluster_status", queue=False)
