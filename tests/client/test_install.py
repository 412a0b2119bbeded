"""The client installs on its own: a fresh virtualenv holding only the wheel and its declared
dependencies imports `pedigree_client` and runs `pedigree --help` without loading anything of
Django, DRF, torch, Celery or the server (which are not even installed there).

Offline and in seconds: the wheel is built with this environment's setuptools
(`--no-build-isolation`), installed into a `--without-pip` virtualenv with this environment's
pip (`pip --python`), and the dependencies are linked from this environment's site-packages.
"""

import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVER_SIDE = {
    "django",
    "rest_framework",
    "torch",
    "celery",
    "config",
    "registry",
    "lineage",
    "licensing",
    "evaluators",
    "demo",
}
IMPORT_CHECK = """
import json, sys
import pedigree_client, pedigree_client.api, pedigree_client.artefacts, pedigree_client.cli
print(json.dumps({"file": pedigree_client.__file__, "modules": sorted(sys.modules)}))
"""


def _run(*command: str | Path) -> str:
    # A clean environment: nothing of this process's PYTHONPATH leaks into the virtualenv.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _dependency_closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` need here (no extras), recursively."""
    needed: set[str] = set()
    pending = list(requirements)
    while pending:
        requirement = Requirement(pending.pop())
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        if requirement.name in needed:
            continue
        needed.add(requirement.name)
        pending.extend(distribution(requirement.name).requires or [])
    return needed


def _declared_dependencies(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(metadata)).get_all("Requires-Dist") or []


def _link_distribution(name: str, site_packages: Path) -> None:
    dist = distribution(name)
    tops = {Path(file).parts[0] for file in dist.files or [] if Path(file).parts[0] != ".."}
    for top in tops:
        source = Path(dist.locate_file(top))
        if source.exists() and not (site_packages / top).exists():
            (site_packages / top).symlink_to(source)


def test_client_installs_alone_and_imports_nothing_of_the_server(tmp_path: Path) -> None:
    source = tmp_path / "client"
    shutil.copytree(
        ROOT / "client",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, source)
    (wheel,) = wheels.glob("pedigree_client-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel)
    site_packages = Path(
        _run(python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    for name in _dependency_closure(_declared_dependencies(wheel)):
        _link_distribution(name, site_packages)

    loaded = json.loads(_run(python, "-I", "-c", IMPORT_CHECK))
    assert Path(loaded["file"]).is_relative_to(site_packages)
    server_side = [m for m in loaded["modules"] if m.split(".")[0] in SERVER_SIDE]
    assert server_side == []
    missing = subprocess.run(
        [python, "-I", "-c", "import django"], capture_output=True, text=True, check=False
    )
    assert "No module named 'django'" in missing.stderr  # the check above proves something

    usage = _run(venv / "bin" / "pedigree", "--help")
    assert "usage: pedigree" in usage and "examples:" in usage
