#!/usr/bin/env bash
# The project's test command: `bash tests/run.sh [pytest args...]`, from any folder.
#
# From a bare machine (python3.11 + pip + apt) it:
#   1. creates .venv when missing (python3 -m venv .venv; $PYTHON picks another interpreter),
#   2. installs requirements-test.txt, then requirements-nodeps.txt with --no-deps, into it when
#      the requirements files changed since the last successful install (their hash is kept in
#      .venv/.requirements-hash) or a pinned package is missing or at another version; otherwise
#      it installs nothing (~0.1 s),
#   3. installs Debian's chromium for the browser tests when /usr/bin/chromium is missing and
#      we are root (otherwise it warns and those tests skip); never `playwright install`;
#      and git (the extension manager clones with it) when it is missing and we are root,
#   4. runs `.venv/bin/python -m pytest "$@"` with single-threaded math and no telemetry, its test
#      files spread over one worker process per CPU (at most 4; pytest-xdist), and exits with pytest's status.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'tests/run.sh: %s\n' "$*" >&2; }

VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
HASH_FILE="$VENV/.requirements-hash"
CHROMIUM="${ATELIER_CHROMIUM:-/usr/bin/chromium}"

# --- 1. virtual environment ------------------------------------------------------------
if [[ -e "$VENV" && ! -x "$VPY" ]]; then
    # Never delete someone's .venv: its interpreter may only be out of this user's reach.
    say "ERROR: $VENV exists but $VPY cannot be run (its base Python moved or is not readable by $(id -un))."
    say "Remove .venv and run tests/run.sh again to recreate it."
    exit 2
fi
if [[ ! -e "$VENV" ]]; then
    if [[ -n "${PYTHON:-}" ]]; then
        base_python="$PYTHON"
    elif command -v python3.11 >/dev/null 2>&1; then
        base_python=python3.11
    else
        base_python=python3
    fi
    say "creating .venv with $base_python ($("$base_python" --version 2>&1))"
    "$base_python" -m venv "$VENV"
fi

# --- 2. requirements (only when they changed) ---------------------------------------------
requirements_hash() {
    # Every requirements*.txt at the root (requirements-test.txt includes requirements.txt)
    # plus the interpreter version: a new Python needs a fresh install too.
    {
        "$VPY" -c 'import sys; print(sys.version)'
        for f in requirements*.txt; do
            printf '%s\n' "$f"
            cat "$f"
        done
    } | sha256sum | cut -d' ' -f1
}

# Pinned (name==version) requirements the venv does not hold at that version: catches a
# venv changed behind our back (a manual `pip install`, an unpinned upgrade) at ~0.1 s.
drifted_pins() {
    "$VPY" - requirements*.txt <<'PY'
import re
import sys
from importlib import metadata

for path in sys.argv[1:]:
    for line in open(path, encoding="utf-8"):
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if not match:
            continue
        name, version = match.groups()
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or installed.split("+")[0] != version:
            print(f"{name}=={version} (have {installed or 'none'})")
PY
}

wanted_hash="$(requirements_hash)"
reason=""
if [[ "$(cat "$HASH_FILE" 2>/dev/null || true)" != "$wanted_hash" ]]; then
    reason="requirements files changed since the last install"
else
    drift="$(drifted_pins)"
    [[ -z "$drift" ]] || reason="pins not satisfied: ${drift//$'\n'/; }"
fi
if [[ -n "$reason" ]]; then
    say "installing requirements-test.txt into .venv ($reason)"
    started=$SECONDS
    "$VPY" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt </dev/null
    # spandrel without its declared torchvision dependency (see requirements-nodeps.txt)
    "$VPY" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt </dev/null
    printf '%s\n' "$wanted_hash" >"$HASH_FILE.tmp"
    mv "$HASH_FILE.tmp" "$HASH_FILE"
    say "requirements installed in $((SECONDS - started)) s"
fi

# --- 3. system packages: chromium (browser tests) and git (the extension manager clones with it) ------
# apt_install PACKAGE WHAT: install a Debian package when we are root and have apt-get; in CI a failure
# is fatal (those tests must run), elsewhere a warning saying what will not work.
apt_install() {
    local package="$1" what="$2"
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's $package for $what (apt-get)"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null &&
               DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" </dev/null; }; then
            if [[ "${CI:-}" == "true" ]]; then
                say "ERROR: could not install $package; CI must run $what"
                exit 1
            fi
            say "WARNING: could not install $package; $what will not run"
        fi
    else
        say "WARNING: $package is missing and we are not root (or have no apt-get); $what will not run." \
            "Install it with: sudo apt-get install -y $package"
    fi
}

if [[ ! -x "$CHROMIUM" ]]; then
    if [[ -n "${ATELIER_CHROMIUM:-}" ]]; then
        say "WARNING: ATELIER_CHROMIUM=$CHROMIUM is not an executable; the browser tests will skip"
    else
        apt_install chromium "the browser tests"
    fi
fi
if ! command -v git >/dev/null 2>&1; then
    apt_install git "the extension tests"
fi

# --- 4. pytest ------------------------------------------------------------------------------
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export GRADIO_ANALYTICS_ENABLED="${GRADIO_ANALYTICS_ENABLED:-False}"
export HF_HUB_DISABLE_TELEMETRY="${HF_HUB_DISABLE_TELEMETRY:-1}"

# Test files run in parallel worker processes (pytest-xdist, one file per worker at a time, so a module's
# server and fixtures stay in one process): one more than the CPUs, at most 4, since many tests wait on
# servers, subprocesses and the browser (on 2 cores: 3 workers, 10:44 against 12:47 with 2);
# ATELIER_TEST_WORKERS overrides (0: none), and a -n / -p no:xdist given on the command line wins.
parallel=()
if [[ " $* " != *" -n "* && " $* " != *" -n="* && " $* " != *"no:xdist"* ]]; then
    cpus="$("$VPY" -c 'import os; print(len(os.sched_getaffinity(0)))')"  # not nproc: it obeys OMP_NUM_THREADS
    workers="${ATELIER_TEST_WORKERS:-$(( cpus + 1 < 4 ? cpus + 1 : 4 ))}"
    if [[ "$workers" -gt 1 ]]; then
        parallel=(-n "$workers" --dist loadfile)
    fi
fi

set +e
"$VPY" -m pytest "${parallel[@]}" "$@"
status=$?
set -e
exit "$status"
