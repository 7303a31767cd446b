"""Extension safety without git or the network: hostile URLs and names, the access gate, the switches
that disable extensions, and the requirements check against Atelier's pins."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from pipelines.errors import ValidationError
from pipelines.extension_manager.access import ExtensionAccess
from pipelines.extension_manager.constraints import check_requirements, constraints_text, protected_packages
from pipelines.extension_manager.errors import ExtensionAccessDenied
from pipelines.extension_manager.state import disabled_extensions, extension_switches
from pipelines.extension_manager.urls import check_branch, check_name, check_source, child_folder, folder_name
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url, message", [
    ("ext::sh -c touch% /tmp/pwned", "remote helpers"),
    ("ext::sh", "remote helpers"),
    ("fd::17", "remote helpers"),
    ("-uupload-pack=touch /tmp/x", "command-line option"),
    ("https://example.com/a b", "spaces"),
    ("--upload-pack=evil", "command-line option"),
    ("file:///etc", "local paths"),
    ("/tmp", "local paths"),
    ("../elsewhere", "local paths"),
    ("ftp://example.com/repo.git", "ftp: URLs are not allowed"),
    ("https:///no-host", "names no host"),
    ("ssh://-oProxyCommand=touch%20x/repo", "cannot start with '-'"),
    ("-oProxyCommand=x@host:repo", "command-line option"),
    ("just-words", "is not a URL"),
    ("https://example.com/a\nb", "control characters"),
    ("", "give the URL"),
])
def test_hostile_or_unsupported_urls_never_reach_git(url, message):
    with pytest.raises(ValidationError, match=message) as caught:
        check_source(url, allow_local=False)
    assert caught.value.field == "url"


def test_accepted_sources_and_their_folder_names(tmp_path):
    assert check_source("https://github.com/a/sd-webui-Thing.git", allow_local=False).name == "sd-webui-Thing"
    assert check_source("git@github.com:a/b.git", allow_local=False).name == "b"
    assert check_source("ssh://git@host:22/x/y/", allow_local=False).name == "y"
    assert check_source("git://host/z", allow_local=False, name="mine").name == "mine"
    local = check_source(str(tmp_path), allow_local=True)
    assert local.local and local.url == str(tmp_path.resolve())
    assert folder_name("https://h/x/..weird name!.git") == "weird-name-"
    with pytest.raises(ValidationError, match="cannot derive"):
        folder_name("https://h/...")


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "-opt", "..", "x" * 101, "a\\b"])
def test_names_that_are_paths_are_refused(name, tmp_path):
    with pytest.raises(ValidationError):
        check_name(name)
    with pytest.raises(ValidationError):
        check_source("https://h/r.git", allow_local=False, name=name)
    with pytest.raises(ValidationError):
        child_folder(tmp_path, name)


def test_branch_names():
    assert check_branch(" dev/next ") == "dev/next" and check_branch("") is None
    for bad in ("-b", "--upload-pack=x", "a..b", "a b", "x@{1}", "end/"):
        with pytest.raises(ValidationError, match="branch"):
            check_branch(bad)


@pytest.mark.parametrize("flags, exposed", [
    ({}, ()),
    ({"server_name": "127.0.0.5"}, ()),
    ({"server_name": "localhost"}, ()),
    ({"listen": True}, ("--listen",)),
    ({"share": True}, ("--share",)),
    ({"server_name": "0.0.0.0"}, ("--server-name 0.0.0.0",)),
])
def test_the_gate_follows_how_far_the_server_is_reachable(tmp_path, flags, exposed):
    access = ExtensionAccess.from_settings(Settings(data_dir=tmp_path, **flags))
    assert access.exposed_by == exposed
    if not exposed:
        access.check("Installing extensions")
        return
    with pytest.raises(ExtensionAccessDenied, match=f"reachable from other machines .*{exposed[0]}.*"
                                                    "--enable-insecure-extension-access"):
        access.check("Installing extensions")
    allowed = ExtensionAccess.from_settings(Settings(data_dir=tmp_path, enable_insecure_extension_access=True,
                                                     **flags))
    allowed.check("Installing extensions")
    assert not allowed.local_only  # local paths stay refused beyond localhost, even when allowed


def test_switches_follow_a1111_flags_and_setting(tmp_path):
    names = [("builtin-a", True), ("user-b", False), ("user-c", False)]
    options = {"disabled_extensions": ["user-c"], "disable_all_extensions": "none"}
    plain = Settings(data_dir=tmp_path)
    assert disabled_extensions(options, plain, names) == {"user-c"}
    assert disabled_extensions(options, Settings(data_dir=tmp_path, disable_extra_extensions=True), names) == {
        "user-b", "user-c"}
    assert disabled_extensions(options, Settings(data_dir=tmp_path, disable_all_extensions=True), names) == {
        "builtin-a", "user-b", "user-c"}
    assert disabled_extensions({**options, "disable_all_extensions": "extra"}, plain, names) == {"user-b", "user-c"}
    switches = extension_switches({"disable_all_extensions": "all"}, plain)
    assert switches.reason("builtin-a", builtin=True) == "disabled by the disable_all_extensions setting ('all')"


def test_requirements_that_would_move_a_pin_are_refused_with_the_reason():
    protected = protected_packages(ROOT)
    torch = metadata.version("torch")
    assert protected["torch"].version == torch and protected["torch"].because == "pinned by Atelier"
    assert protected["pydantic"].because.startswith("needed by")  # gradio/fastapi's dependency is kept too
    check = check_requirements(["torch==1.0", "numpy<2  # old API", "-r other.txt",
                                "git+https://example.com/x.git", "einops", "torch>=2.0",
                                "somelib; python_version < '3'"], protected)
    assert not check.ok
    assert check.refused[0] == f"torch==1.0: Atelier runs torch {torch} (pinned by Atelier), and it would be changed"
    assert check.refused[1].startswith("numpy<2: Atelier runs numpy ")
    assert "pip options are not allowed" in check.refused[2]
    assert "not a requirement Atelier can check" in check.refused[3]
    assert [str(r) for r in check.requirements] == ["einops", "torch>=2.0"]  # the marker line does not apply

    harmless = check_requirements(["einops>=0.1", "tqdm"], protected)
    assert harmless.ok
    text = constraints_text(harmless.protected)
    assert f"torch=={torch}\n" in text and f"gradio=={metadata.version('gradio')}\n" in text


def test_launch_flags_reach_the_settings_and_the_gate(tmp_path):
    from launch import build_parser, build_settings

    settings = build_settings(build_parser().parse_args(["--data-dir", str(tmp_path), "--listen",
                                                         "--disable-extra-extensions", "--extensions-dir",
                                                         str(tmp_path / "x")]))
    assert settings.extensions_folder == (tmp_path / "x").resolve() and settings.disable_extra_extensions
    assert ExtensionAccess.from_settings(settings).refusal("Installing extensions").startswith(
        "Installing extensions is disabled because this server is reachable from other machines (--listen)")
    allowed = build_settings(build_parser().parse_args(["--data-dir", str(tmp_path), "--server-name", "0.0.0.0",
                                                        "--enable-insecure-extension-access"]))
    assert ExtensionAccess.from_settings(allowed).allowed and allowed.extensions_folder == tmp_path / "extensions"


def test_git_progress_lines_become_progress_updates():
    from pipelines.extension_manager.git import progress_reporter

    updates = []
    report = progress_reporter("install", updates.append)
    for line in ("Cloning into 'x'...", "remote: Counting objects:  50% (1/2)", "Receiving objects:  45% (9/20)",
                 "Receiving objects: 100% (20/20), 3.1 KiB | 3.1 MiB/s, done.", "Resolving deltas:   0% (0/3)"):
        report(line)
    assert [(u.text, u.step, u.total) for u in updates] == [("Counting objects", 50, 100),
                                                            ("Receiving objects", 45, 100),
                                                            ("Receiving objects", 100, 100),
                                                            ("Resolving deltas", 0, 100)]
