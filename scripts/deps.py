"""The exact dependency versions (``requirements.lock``) and their audit.

    python scripts/deps.py lock     # write requirements.lock from this environment
    python scripts/deps.py audit    # pip-audit requirements.lock against an advisory database

``audit`` exits 0 only when every locked package was checked and none has a known
vulnerability; 1 when one has; 2 when the audit could not run or skipped packages (no
advisory database reachable, say): then it says so plainly, and it is not a pass.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
#: not pinned: the project itself (installed editable), the installer's own tools, and torch
#: (its build depends on the machine: install a CPU build first, see the README)
_LEFT_OUT = {"bandit-router", "pip", "setuptools", "wheel", "torch"}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _needed(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Every installed distribution ``root[extras]`` needs, transitively: name -> version."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(e) for e in envs):
                continue
            key = _normal(req.name)
            if key in found or key in _LEFT_OUT:
                continue
            try:
                found[key] = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                continue  # not for this platform
            todo.append((req.name, tuple(req.extras)))
    return found


def lock() -> int:
    pins = [f"{name}=={version}" for name, version in
            sorted(_needed("bandit-router", ("dev", "postgres")).items())]
    header = [
        "# Exact versions of bandit-router's dependencies with its dev tools, as tested by CI.",
        f"# Written by `python scripts/deps.py lock` on {platform.system()} "
        f"{platform.machine()}, CPython {platform.python_version()}, with a CPU build of torch.",
        "# Install torch first (a CPU build: see the README), then:",
        "#   pip install -r requirements.lock && pip install --no-deps -e .",
    ]
    LOCK.write_text("\n".join(header + pins) + "\n")
    print(f"{len(pins)} packages pinned in {LOCK.name}")
    return 0


def audit() -> int:
    command = [sys.executable, "-m", "pip_audit", "-r", str(LOCK), "--no-deps",
               "--disable-pip", "-f", "json", "--progress-spinner", "off"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"DEPENDENCY AUDIT NOT RUN: {exc}")
        return 2
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print("DEPENDENCY AUDIT NOT RUN: pip-audit gave no report: " + " | ".join(tail))
        return 2
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    for d in vulnerable:
        ids = ", ".join(v["id"] for v in d["vulns"])
        print(f"VULNERABLE: {d['name']} {d.get('version', '')}: {ids}")
    if vulnerable:
        return 1
    if skipped or not deps:
        print(f"DEPENDENCY AUDIT INCOMPLETE: {len(skipped)} of {len(deps)} locked packages "
              f"could not be checked (no advisory data reachable from here?), e.g. "
              f"{skipped[0]['skip_reason'] if skipped else 'no packages'}. This is not a "
              f"pass: run it where pypi.org or osv.dev answers.")
        return 2
    print(f"dependency audit: {len(deps)} locked packages checked, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    actions = {"lock": lock, "audit": audit}
    if len(sys.argv) != 2 or sys.argv[1] not in actions:
        sys.exit(__doc__)
    sys.exit(actions[sys.argv[1]]())
