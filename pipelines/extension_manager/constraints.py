"""An extension's ``requirements.txt``, installed only under constraints that keep Atelier's packages.

The protected packages are every ``name==version`` pin of Atelier's ``requirements.txt`` and
``requirements-nodeps.txt`` (torch, diffusers, transformers, gradio, huggingface_hub, peft, safetensors,
accelerate, numpy, pillow, ...) plus what those installed packages depend on (pydantic, tokenizers, ...),
each at the version installed now (a CUDA build of torch stays that build). Before anything is
installed, every requirement is read with ``packaging``:

- a requirement on a protected package that its installed version does not satisfy is refused, with
  the reason (``torch==1.0: Atelier runs torch 2.13.0``);
- a line that cannot be checked (pip options such as ``-r``/``--index-url``, ``git+https://...`` without
  a name, a direct URL for a protected package) is refused too: it could bring anything.

Otherwise pip runs as ``python -m pip install -r requirements.txt --constraint <file>``, the file pinning
every protected package to its installed version, so not even a dependency of a dependency can move one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pipelines.extension_manager.errors import ExtensionError, RequirementsConflict
from pipelines.files import write_text_atomically

PIN_FILES = ("requirements.txt", "requirements-nodeps.txt")
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")
PIP_TIMEOUT_S = 900


@dataclass(frozen=True)
class Protected:
    """A package Atelier keeps at one version, and why it is protected."""

    name: str  # canonical
    version: str  # installed (else pinned) version
    because: str  # "pinned by Atelier" or "needed by gradio"


def read_pins(root: Path) -> dict[str, str]:
    """``name==version`` lines of Atelier's requirement files (canonical names)."""
    pins: dict[str, str] = {}
    for filename in PIN_FILES:
        path = root / filename
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            match = _PIN.match(line.strip())
            if match:
                pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _dependencies(name: str) -> list[str]:
    """What the installed distribution ``name`` needs (without extras), for this interpreter."""
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    environment = default_environment()
    names = []
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""}):
            names.append(canonicalize_name(requirement.name))
    return names


def protected_packages(root: Path) -> dict[str, Protected]:
    """Atelier's pins and, transitively, the installed packages they depend on, at their installed versions."""
    out = {name: Protected(name, installed_version(name) or pinned, "pinned by Atelier")
           for name, pinned in read_pins(root).items()}
    pending = list(out)
    while pending:  # breadth first: each dependency names the nearest package that needs it
        name = pending.pop(0)
        for dep in _dependencies(name):
            version = installed_version(dep)
            if dep not in out and version is not None:
                out[dep] = Protected(dep, version, f"needed by {name}")
                pending.append(dep)
    return out


@dataclass(frozen=True)
class RequirementsCheck:
    """The outcome of reading an extension's requirements.txt against the protected packages."""

    requirements: tuple[Requirement, ...] = ()
    refused: tuple[str, ...] = ()  # one reason per refused line
    protected: dict[str, Protected] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.refused


def check_requirements(lines: Iterable[str], protected: dict[str, Protected]) -> RequirementsCheck:
    """Every requirement line checked against ``protected``; nothing is installed."""
    requirements: list[Requirement] = []
    refused: list[str] = []
    for number, raw in enumerate(lines, 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            refused.append(f"line {number} {line!r}: pip options are not allowed in an extension's requirements")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            refused.append(f"line {number} {line!r}: not a requirement Atelier can check (a name and versions)")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        keep = protected.get(canonicalize_name(requirement.name))
        if keep is not None:
            if requirement.url:
                refused.append(f"{line}: {keep.name} must come from Atelier's own install ({keep.because}), "
                               "not from a URL")
                continue
            if not requirement.specifier.contains(keep.version, prereleases=True):
                refused.append(f"{line}: Atelier runs {keep.name} {keep.version} ({keep.because}), and it "
                               "would be changed")
                continue
        requirements.append(requirement)
    return RequirementsCheck(tuple(requirements), tuple(refused), protected)


def constraints_text(protected: dict[str, Protected]) -> str:
    """A pip constraints file pinning every protected package to its installed version."""
    lines = ["# Written by Atelier: the packages it needs stay at these versions while an extension's",
             "# requirements are installed."]
    lines += [f"{p.name}=={p.version}" for p in sorted(protected.values(), key=lambda p: p.name)]
    return "\n".join(lines) + "\n"


def pip_command(requirements: Path, constraints: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "-r", str(requirements), "--constraint", str(constraints)]


def install_requirements(extension: str, folder: Path, *, root: Path, constraints_file: Path) -> bool:
    """Check ``folder/requirements.txt`` and install it under constraints; False when there is none.

    Raises :class:`RequirementsConflict` (nothing installed) or :class:`ExtensionError` (pip failed)."""
    requirements = folder / "requirements.txt"
    if not requirements.is_file():
        return False
    check = check_requirements(requirements.read_text(encoding="utf-8").splitlines(), protected_packages(root))
    if not check.ok:
        raise RequirementsConflict(extension, list(check.refused))
    if not check.requirements:
        return False
    write_text_atomically(constraints_file, constraints_text(check.protected))
    done = subprocess.run(pip_command(requirements, constraints_file), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise ExtensionError(f"{extension}: pip could not install its requirements under Atelier's "
                             f"constraints: {tail}")
    return True
