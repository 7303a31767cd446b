"""The Extensions tab: Installed (enable, check for updates, update, roll back, uninstall, apply and
restart), Available (the index, :mod:`webui.tabs.extensions_available`) and Install from URL.

The tab only wires events to :class:`~pipelines.extension_manager.manager.ExtensionManager`, which
enforces the access gate itself: under ``--listen`` / ``--share`` the buttons are shown and refused
with the reason, so no other client (the API, a crafted request) can do what the page cannot.

"Apply and restart UI" saves which extensions are enabled and, when launch.py started the server,
restarts the process the way it was started (the new process loads the extensions anew); the page
reloads once the server answers again. Without a restart function (an app embedded in tests or
another program) it saves and says to restart.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from pipelines.context import AppContext
from pipelines.extension_manager.manager import ExtensionManager, UpdateCheck
from pipelines.extension_manager.records import ExtensionRecord
from pipelines.hooks.registry import ExtensionLoadReport
from webui.errors import user_error
from webui.jobs import run_job
from webui.tabs import extensions_available

COLUMNS = ["Extension", "Enabled", "Status", "Load time", "URL", "Branch", "Commit", "Date", "Updates"]
RESTART_DELAY_S = 1.0  # lets the answer reach the page before the process is replaced
RELOAD_WHEN_BACK_JS = """() => {
    const poll = () => fetch(location.href, {cache: "no-store"})
        .then(r => r.ok ? location.reload() : setTimeout(poll, 1000), () => setTimeout(poll, 1000));
    setTimeout(poll, 4000);
}"""


def status_text(record: ExtensionRecord, report: ExtensionLoadReport | None) -> str:
    """What loading made of the extension at start-up, and what changes at the next start."""
    if report is None:
        if not record.has_entry:
            return "not an Atelier extension (no extension.py)"
        return "installed; loads at the next start" if record.enabled else f"disabled ({record.disabled_reason})"
    if report.status == "failed":
        text = f"failed: {report.error}"
    elif report.status == "disabled":
        text = f"disabled ({record.disabled_reason})" if record.disabled_reason else "disabled"
    else:
        text = "loaded"
    if (report.status == "disabled") == record.enabled:
        text += " · enabled at the next start" if record.enabled else " · disabled at the next start"
    return text


def installed_rows(records: list[ExtensionRecord], reports: list[ExtensionLoadReport],
                   updates: dict[str, str]) -> list[list[str]]:
    by_name = {report.name: report for report in reports}
    rows = []
    for r in records:
        report = by_name.get(r.name)
        date = datetime.datetime.fromtimestamp(r.commit_date).strftime("%Y-%m-%d %H:%M") if r.commit_date else ""
        kind = " (built-in)" if r.builtin else ""
        rows.append([
            r.name + kind, "yes" if r.enabled else "no", status_text(r, report),
            f"{report.load_seconds:.2f} s" if report is not None and report.status != "disabled" else "",
            r.remote, r.branch, r.version, date, updates.get(r.name, r.problem or ""),
        ])
    return rows


def load_reports(ctx: AppContext) -> list[ExtensionLoadReport]:
    return ctx.extensions.reports()


@dataclass(frozen=True)
class InstalledView:
    """What shows the installed extensions; refreshed after every change."""

    table: gr.Dataframe
    enabled: gr.CheckboxGroup
    pick: gr.Dropdown

    def outputs(self) -> list:
        return [self.table, self.enabled, self.pick]


def refresh(ctx: AppContext, updates: dict[str, str] | None = None) -> tuple:
    """The installed table, the enabled boxes and the extension picker, read afresh."""
    records = ctx.extension_manager.records()
    names = [r.name for r in records]
    enabled = [r.name for r in records if r.enabled]
    return (installed_rows(records, load_reports(ctx), updates or {}),
            gr.CheckboxGroup(choices=names, value=enabled), gr.Dropdown(choices=names))


def build(ctx: AppContext, tab: gr.Tab, *, restart: Callable[[], None] | None = None) -> None:
    manager = ctx.extension_manager
    refusal = manager.access.refusal("Installing or changing extensions")
    if refusal:
        gr.Markdown(f"⚠️ {refusal}.", elem_id="extensions_refused")
    with gr.Tabs():
        with gr.Tab("Installed", id="extensions_installed_tab"):
            view = _installed(ctx, manager, restart)
        with gr.Tab("Available", id="extensions_available_tab"):
            extensions_available.build(ctx, view.outputs(), lambda: refresh(ctx))
        with gr.Tab("Install from URL", id="extensions_url_tab"):
            _install_from_url(ctx, manager, view)
    tab.select(lambda: refresh(ctx), None, view.outputs(), api_visibility="private")


def _installed(ctx: AppContext, manager: ExtensionManager, restart: Callable[[], None] | None) -> InstalledView:
    records = manager.records()
    names = [r.name for r in records]
    table = gr.Dataframe(installed_rows(records, load_reports(ctx), {}), headers=COLUMNS, interactive=False,
                         wrap=True, elem_id="extensions_installed")
    enabled = gr.CheckboxGroup(names, value=[r.name for r in records if r.enabled], label="Enabled extensions",
                               elem_id="extensions_enabled")
    with gr.Row(equal_height=True):
        apply = gr.Button("Apply and restart UI", variant="primary", elem_id="extensions_apply")
        check = gr.Button("Check for updates", elem_id="extensions_check")
        show = gr.Button("Refresh", elem_id="extensions_refresh")
    with gr.Row(equal_height=True):
        pick = gr.Dropdown(names, value=None, label="Extension", scale=3, elem_id="extensions_pick")
        update = gr.Button("Update", scale=1, elem_id="extensions_update")
        rollback = gr.Button("Rollback", scale=1, elem_id="extensions_rollback")
        uninstall = gr.Button("Uninstall", variant="stop", scale=1, elem_id="extensions_uninstall")
    result = gr.Markdown(elem_id="extensions_installed_result")
    view = InstalledView(table, enabled, pick)
    updates = gr.State({})

    def picked(name: str | None) -> str:
        if not name:
            raise gr.Error("Pick an extension first", title="No extension")
        return name

    def apply_enabled(checked: list[str]):
        """Save which extensions are enabled (config.json) and restart the server to load them."""
        try:
            disabled = manager.set_enabled(checked or [])
        except Exception as exc:
            raise user_error(exc, title="Cannot apply") from exc
        note = f"Disabled: {', '.join(disabled)}." if disabled else "Every extension is enabled."
        if restart is None:
            message = f"Saved. {note} Restart Atelier to apply."
        else:
            threading.Timer(RESTART_DELAY_S, restart).start()
            message = f"Saved. {note} Restarting Atelier; the page reloads when it is back."
        return (*refresh(ctx), message)

    def check_updates(current: dict[str, str]):
        """Fetch every git-installed extension and show how many commits each is behind."""
        try:
            checks: list[UpdateCheck] = manager.check_updates()
        except Exception as exc:
            raise user_error(exc, title="Cannot check for updates") from exc
        found = {**current, **{c.name: c.text for c in checks}}
        behind = [c.name for c in checks if c.behind]
        message = f"Updates for: {', '.join(behind)}." if behind else "Every extension is up to date."
        return (*refresh(ctx, found), found, message)

    def run_change(action: str, change: Callable[[str], ExtensionRecord | None], done: str):
        def handler(name: str | None, current: dict[str, str]):
            name = picked(name)
            try:
                record = change(name)
            except Exception as exc:
                raise user_error(exc, title=f"Cannot {action}") from exc
            found = {k: v for k, v in current.items() if k != name}
            text = done.format(name=name, commit=record.version if record else "")
            return (*refresh(ctx, found), found, f"{text} Apply and restart UI to load it.")

        return handler

    outputs = [*view.outputs(), updates, result]
    apply_event = apply.click(apply_enabled, [enabled], [*view.outputs(), result], api_name="extensions_apply")
    if restart is not None:
        apply_event.success(None, None, None, js=RELOAD_WHEN_BACK_JS)
    check.click(check_updates, [updates], outputs, api_name="extensions_check_updates")
    show.click(lambda: refresh(ctx), None, view.outputs(), api_name="extensions_list")
    update.click(run_change("update", manager.update, "Updated **{name}** to {commit}."), [pick, updates], outputs,
                 api_name="extensions_update")
    rollback.click(run_change("roll back", manager.rollback, "Rolled **{name}** back to {commit}."),
                   [pick, updates], outputs, api_name="extensions_rollback")
    uninstall.click(run_change("uninstall", manager.uninstall, "Uninstalled **{name}**."), [pick, updates], outputs,
                    api_name="extensions_uninstall")
    return view


def _install_from_url(ctx: AppContext, manager: ExtensionManager, view: InstalledView) -> None:
    url = gr.Textbox(label="URL of the extension's git repository",
                     placeholder="https://github.com/user/atelier-extension.git", elem_id="extensions_url")
    with gr.Row(equal_height=True):
        branch = gr.Textbox(label="Branch (empty: the repository's default)", elem_id="extensions_branch")
        folder = gr.Textbox(label="Folder name (empty: from the URL)", elem_id="extensions_folder")
    install = gr.Button("Install", variant="primary", elem_id="extensions_install")
    result = gr.Markdown(elem_id="extensions_install_result")

    def install_from_url(url: str, branch: str, folder: str, progress: gr.Progress = gr.Progress()):
        """Clone the repository into the extensions folder (its requirements under Atelier's constraints)."""
        record = run_job(lambda report: manager.install(url, branch=branch or None, name=folder or None,
                                                        on_progress=report), progress, error_title="Cannot install")
        message = (f"Installed **{record.name}** ({record.version} on {record.branch or 'a detached commit'}) into "
                   f"`{record.folder}`. Apply and restart UI to load it.")
        return (*refresh(ctx), message)

    gr.on([install.click, url.submit], install_from_url, [url, branch, folder], [*view.outputs(), result],
          api_name="extensions_install")
