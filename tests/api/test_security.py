"""Safe serving (issue 12): one server as ``launch.py --api --gradio-auth artist:PASSWORD`` builds it (the UI's
account guards the API too), started while a script polls it; every route it serves walked with and without
the login; the Host check, the failed-login throttle, no password in any response or log line; and the
refusal to serve other machines without a login."""

from __future__ import annotations

import http.client
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount

from launch import bind_host, build_api_config, build_parser, check_exposure, redacted_argv
from pipelines.context import AppContext
from tests.support.apps import free_port, make_settings

PASSWORD = "pw-Zq81-s3cret"
USER = ("artist", PASSWORD)
ARGV = ["--api", "--gradio-auth", f"{USER[0]}:{PASSWORD}"]

# Routes that answer without a login, and why that gives nothing away. Every other route must refuse (401/403).
PUBLIC = {
    "/": "the login page", "/login": "the login form's target", "/login/": "the login form's target",
    "/logout": "a redirect", "/favicon.ico": "asset", "/manifest.json": "asset", "/robots.txt": "asset",
    "/theme.css": "asset", "/gradio_api/theme.css": "asset", "/assets/{path:path}": "the page's bundled assets",
    "/static/{path:path}": "the page's bundled assets", "/svelte/{path:path}": "the page's bundled assets",
    "/pwa_icon": "asset", "/pwa_icon/{size}": "asset", "/gradio_api/runs": "the login page",
    "/gradio_api/runs/": "the login page", "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}":
    "custom components' assets (Atelier has none)",
    "/gradio_api/app_id": "a random id of this start", "/gradio_api/app_id/": "a random id of this start",
    "/gradio_api/startup-events": "runs the app's start-up once; says true/false",
    "/gradio_api/token": "echoes the caller's own cookie", "/gradio_api/token/": "echoes the caller's own cookie",
    "/gradio_api/user": "the caller's own user name", "/gradio_api/user/": "the caller's own user name",
    "/gradio_api/heartbeat/{session_hash}": "keep-alive of a session the caller names",
    "/gradio_api/cancel": "needs a running event's random id", "/gradio_api/reset": "needs an event's random id",
    "/gradio_api/reset/": "needs an event's random id", "/gradio_api/stream/{event_id}": "needs an event's id",
    "/gradio_api/stream/{event_id}/close": "needs an event's random id",
    "/monitoring/{key}": "needs the monitoring key (403 without)",
}
STREAMS = ("/gradio_api/stream/{session_hash}/", "/gradio_api/vibe", "/gradio_api/undo-vibe")  # off: 403 / random ids
REFUSED_EVEN_LOGGED_IN = ("/gradio_api/run-history/",)  # needs a Hugging Face sign-in, which Atelier does not offer
API_PATHS = ("/sdapi/", "/atelier/", "/extensions/", "/docs", "/redoc", "/openapi.json")  # HTTP Basic; others: cookie


def every_call(routes, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) of every HTTP route in ``routes`` (included routers and mounts opened up)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from every_call(route.original_router.routes, prefix)
        elif isinstance(route, Mount):
            yield "GET", prefix + route.path + "/{path:path}"
        else:
            for method in route.methods or ():
                if method != "HEAD":
                    yield method, prefix + route.path


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[dict]:
    """The server, with what a script polling it during start-up saw: ``first_api_status``, the first answer of
    /sdapi/v1/sd-models (polled from before the server listens), and ``page_status``, of ``/`` just after."""
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("security-data")
    ctx = AppContext.build(make_settings(data_dir, temp_sweep_every_s=0.2))  # a day's age: it deletes nothing here
    output = ctx.settings.outputs_dir / "txt2img-images" / "kept.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"\x89PNG\r\n\x1a\n")
    args = build_parser().parse_args(ARGV)
    check_exposure(args)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    seen: dict = {}

    def poll() -> None:  # a script calling the API until the server answers (before this fix: 404s at first)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                seen["first_api_status"] = httpx.get(url + "sdapi/v1/sd-models", auth=USER, timeout=60).status_code
                seen["page_status"] = httpx.get(url, timeout=60).status_code
                return
            except httpx.ConnectError:
                time.sleep(0.005)

    lines = Lines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(lines)
    root.setLevel(logging.INFO)
    poller = threading.Thread(target=poll)
    poller.start()
    demo, served_url, _ = serve(ctx, host="127.0.0.1", port=port, auth=[USER], block=False,
                                api=build_api_config(args))
    poller.join(130)
    try:
        yield {"url": served_url, "app": demo.server_app, "ctx": ctx, "output": output, "logs": lines.lines, **seen}
    finally:
        demo.close()
        root.removeHandler(lines)
        root.setLevel(old_level)


def test_the_api_answers_from_the_first_connection(guarded):
    assert guarded["first_api_status"] == 200  # not a 404 while the routes are still being added
    assert guarded["page_status"] == 200


def _path(template: str, output) -> str:
    if "file" in template and "path" in template:
        return template.split("{")[0] + str(output)  # a real output file: refused without the login, served with it
    return re.sub(r"\{[^}]+\}", "1", template)


def _call(client: httpx.Client, method: str, path: str) -> tuple[int, str]:
    body = ({"steps": "x"} if path.endswith("2img") else {}) if method in ("POST", "PUT", "PATCH") else None  # no job
    with client.stream(method, path, json=body) as response:
        text = "" if "event-stream" in response.headers.get("content-type", "") else response.read().decode("latin-1")
        return response.status_code, text + str(response.headers)


def test_every_route_needs_the_login_unless_it_is_public(guarded):
    calls = sorted(set(every_call(guarded["app"].routes)))
    paths = {path for _, path in calls}
    assert {"/sdapi/v1/txt2img", "/sdapi/v1/options", "/docs", "/openapi.json", "/config", "/gradio_api/info",
            "/gradio_api/file={path_or_url:path}", "/gradio_api/upload", "/atelier/v1/extensions"} <= paths
    assert len(calls) > 100
    with httpx.Client(base_url=guarded["url"], timeout=60) as anyone, \
            httpx.Client(base_url=guarded["url"], timeout=60) as browser, \
            httpx.Client(base_url=guarded["url"], auth=USER, timeout=60) as script:
        assert browser.post("login", data={"username": USER[0], "password": PASSWORD}).status_code == 200
        for method, template in calls:
            path = _path(template, guarded["output"])
            status, text = _call(anyone, method, path)
            assert PASSWORD not in text, (method, path)
            if template in PUBLIC or template.startswith(STREAMS):
                continue
            assert status in (401, 403), (method, template, status, text[:200])
            status, text = _call(script if template.startswith(API_PATHS) else browser, method, path)
            assert PASSWORD not in text, (method, path)
            if template.startswith(REFUSED_EVEN_LOGGED_IN):
                continue
            assert status not in (401, 403, 429), (method, template, status, text[:200])
        served = browser.get(_path("/gradio_api/file={path_or_url:path}", guarded["output"]))
        assert served.content.startswith(b"\x89PNG")


SECRET = b"atelier-secret-7Qw2"


def _raw_get(url: str, path: str, cookie: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (httpx would resolve its ``..`` before sending)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _secret(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SECRET)
    return path


def test_file_routes_serve_only_outputs_and_own_temp_files(guarded, tmp_path):
    """Gradio's file routes (and its asset routes) asked, with the login, for files outside the outputs and the
    app's own temporary folder: by ``..`` (plain, %-encoded, double-encoded, backslashed), by absolute path, by
    links placed in the outputs and the temporary folder, and other apps' data; all refused (403/404)."""
    settings = guarded["ctx"].settings
    outputs, temp = settings.outputs_dir, Path(guarded["app"].uploaded_file_dir)
    assert temp == Path(os.environ["GRADIO_TEMP_DIR"]) and temp.resolve() != Path(tempfile.gettempdir(), "gradio")
    secret = _secret(tmp_path / "outside" / "secret.txt")
    other = tmp_path / "other-app"  # another Atelier's data folder, and another Gradio app's temporary folder
    others = [_secret(other / "config.json"), _secret(other / "models" / "Stable-diffusion" / "m.safetensors"),
              _secret(other / ".gradio_tmp" / "0a1b" / "image.png"),
              _secret(Path(tempfile.gettempdir(), "gradio", f"atelier-test-{os.getpid()}", "image.png"))]
    own = [settings.data_dir / "config.json", _secret(settings.models_dir / "Stable-diffusion" / "own.safetensors")]
    own[0].write_text(own[0].read_text() if own[0].exists() else "{}")
    links = {outputs / "txt2img-images" / "leak.png": secret, outputs / "leaked-folder": secret.parent,
             outputs / "config.png": own[0], temp / "0c0d" / "leak.png": secret}
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    up = os.path.relpath(secret, outputs / "txt2img-images")  # ../../…/outside/secret.txt
    escapes = [f"{outputs}/txt2img-images/{up}", f"{outputs}/txt2img-images/{up.replace('../', '%2e%2e%2f')}",
               f"{outputs}/txt2img-images/{up.replace('../', '%252e%252e%252f')}",
               f"{outputs}/txt2img-images/{up.replace('../', '..%5c')}", f"{outputs}/txt2img-images/..\\{up}",
               str(secret), "/etc/passwd", "%2fetc%2fpasswd", "config.json", "../" * 12 + "etc/passwd",
               *map(str, others + own), str(outputs / "txt2img-images" / "leak.png"),
               f"{outputs}/leaked-folder/secret.txt", str(outputs / "config.png"), str(temp / "0c0d" / "leak.png"),
               f"http://127.0.0.1:{guarded['url'].rstrip('/').rsplit(':', 1)[1]}/config"]  # and no fetching
    paths = [f"/gradio_api/{route}{escape}" for route in ("file=", "file/") for escape in escapes]
    paths += [f"/{route}/{dots}etc/passwd" for route in ("static", "assets", "svelte")
              for dots in ("../" * 12, "%2e%2e/" * 12, "%2e%2e%2f" * 12, "..%5c" * 12)]
    paths += ["/gradio_api/custom_component/x/client/%2e%2e/%2e%2e%2fetc/passwd",
              f"/gradio_api/proxy=http://127.0.0.1:{guarded['url'].rstrip('/').rsplit(':', 1)[1]}/config"]
    with httpx.Client(base_url=guarded["url"], timeout=60) as browser:
        assert browser.post("login", data={"username": USER[0], "password": PASSWORD}).status_code == 200
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        uploaded = browser.post("gradio_api/upload", files={"files": ("up.png", b"\x89PNG uploaded")}).json()[0]
    try:
        assert Path(uploaded).resolve().is_relative_to(temp.resolve())  # the app's own folder
        for path in (f"/gradio_api/file={guarded['output']}", f"/gradio_api/file={uploaded}"):
            status, body = _raw_get(guarded["url"], path, cookie)
            assert status == 200 and body.startswith(b"\x89PNG"), (path, status)  # what may be served, is
        for path in paths:
            status, body = _raw_get(guarded["url"], path, cookie)
            assert status in (400, 403, 404) and SECRET not in body and b"root:" not in body, (path, status, body[:80])
    finally:
        others[-1].unlink()
        others[-1].parent.rmdir()
        for link in links:
            link.unlink()


def test_the_temporary_folder_is_swept_on_schedule(guarded):
    """The served app sweeps its own temporary folder every ``temp_sweep_every_s``, with the settings' age (what a
    sweep deletes: tests/webui/test_temp_sweeper.py)."""
    sweeper = guarded["app"].state.temp_sweeper
    assert sweeper.folder == Path(guarded["app"].uploaded_file_dir) and sweeper.enabled
    assert sweeper.max_age_s == guarded["ctx"].settings.temp_max_age_s == 86400
    runs, deadline = sweeper.runs, time.monotonic() + 30
    while sweeper.runs < runs + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sweeper.runs >= runs + 2, "the sweeper did not run every 0.2 s"


def test_a_foreign_host_header_is_refused_on_localhost(guarded):
    url, port = guarded["url"], guarded["url"].rstrip("/").rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "192.168.1.9"):
        for path in ("", "sdapi/v1/sd-models", "config"):
            response = httpx.get(url + path, headers={"Host": host}, auth=USER, timeout=60)
            assert response.status_code == 403, (host, path)
            assert "localhost" in response.json()["detail"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        assert httpx.get(url + "sdapi/v1/sd-models", headers={"Host": host}, auth=USER, timeout=60).status_code == 200


def test_failed_logins_are_throttled_per_address(guarded):
    form = {"username": USER[0], "password": "guess"}
    other = httpx.HTTPTransport(local_address="127.0.0.2")  # its own address: the other tests are not throttled
    with httpx.Client(base_url=guarded["url"], transport=other, timeout=60) as attacker:
        statuses = [attacker.post("login", data=form).status_code for _ in range(5)]
        assert statuses == [400] * 5  # Gradio's "Incorrect credentials."
        throttled = attacker.post("login", data=form)
        assert throttled.status_code == 429 and 1 <= int(throttled.headers["retry-after"]) <= 60
        assert "try again" in throttled.json()["detail"]
        right = attacker.get("sdapi/v1/sd-models", auth=USER)  # even the right password, from this address
        assert right.status_code == 429 and "retry-after" in right.headers
        assert attacker.get("sdapi/v1/sd-models").status_code == 401  # no credentials: not a login attempt
    assert httpx.get(guarded["url"] + "sdapi/v1/sd-models", auth=USER, timeout=60).status_code == 200


def test_no_log_line_holds_the_password(guarded):
    httpx.get(guarded["url"] + "sdapi/v1/cmd-flags", auth=USER, timeout=60)
    httpx.get(guarded["url"] + "sdapi/v1/options", auth=(USER[0], PASSWORD + "x"), timeout=60)
    assert guarded["logs"], "the log capture saw nothing"
    assert not [line for line in guarded["logs"] if PASSWORD in line]


def test_serving_other_machines_needs_a_login_or_insecure(caplog):
    parse = build_parser().parse_args
    assert bind_host(parse([])) == "127.0.0.1" and bind_host(parse(["--share", "--gradio-auth", "a:b"])) == "127.0.0.1"
    assert bind_host(parse(["--listen", "--gradio-auth", "a:b"])) == "0.0.0.0"
    for argv, names in ((["--listen"], "--listen"), (["--share"], "--share"),
                        (["--server-name", "0.0.0.0"], "--server-name"), (["--nowebui", "--listen"], "--api-auth")):
        with pytest.raises(SystemExit) as refused:
            check_exposure(parse(argv))
        message = str(refused.value)
        assert "--gradio-auth" in message and "--insecure" in message and names in message, message
    with caplog.at_level(logging.WARNING, logger="atelier"):
        check_exposure(parse(["--listen", "--insecure"]))
    assert "--insecure" in caplog.text and "without a login" in caplog.text
    for argv in ([], ["--listen", "--gradio-auth", "a:b"], ["--nowebui", "--listen", "--api-auth", "a:b"],
                 ["--server-name", "127.0.0.1"], ["--share", "--nowebui"]):
        check_exposure(parse(argv))  # local only, or a login: starts
    assert build_api_config(parse(ARGV)).auth == (USER,)  # the UI's login guards the API too
    assert build_api_config(parse([*ARGV, "--api-auth", "bot:t0k"])).auth == (("bot", "t0k"),)  # unless its own
    assert redacted_argv(["launch.py", "--gradio-auth", "a:pw1,b:pw2", "--api-auth=c:pw3"]) == [
        "launch.py", "--gradio-auth", "a:***,b:***", "--api-auth=c:***"]
