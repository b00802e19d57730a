"""Render the settings tables of docs/configuration.md from the code, so that they cannot
drift from it: RouterConfig's and PolicyConfig's fields and defaults, and the service's
settings with their environment variables.

    python scripts/config_doc.py           # print the tables
    python scripts/config_doc.py --write   # rewrite them in docs/configuration.md

tests/feedback_api/test_config_doc.py fails when the document is not what this renders.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from bandit_router import PolicyConfig, RouterConfig
from feedback_api.settings import POLICY_SETTINGS, ROUTER_SETTINGS, Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
START = "<!-- settings-tables:start (python scripts/config_doc.py --write) -->"
END = "<!-- settings-tables:end -->"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    return f"`{value!r}`"


def _dataclass_table(cls: type) -> str:
    rows = ["| field | default |", "|---|---|"]
    for f in dataclasses.fields(cls):
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory())  # type: ignore[misc,operator]
        rows.append(f"| `{f.name}` | {_value(default)} |")
    return "\n".join(rows)


def _settings_table() -> str:
    rows = ["| setting | environment variable | default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if name in ROUTER_SETTINGS:
            default = f"{_value(getattr(RouterConfig(), name))} (`RouterConfig`'s)"
        elif name in POLICY_SETTINGS:
            default = f"{_value(getattr(PolicyConfig(), name))} (`PolicyConfig`'s)"
        else:
            default = _value(field.default)
        rows.append(f"| `{name}` | `BANDIT_ROUTER_{name.upper()}` | {default} |")
    return "\n".join(rows)


def render() -> str:
    return "\n\n".join([
        "### The service's settings (`feedback_api.Settings`)", _settings_table(),
        "### `RouterConfig`", _dataclass_table(RouterConfig),
        "### `PolicyConfig`", _dataclass_table(PolicyConfig)]) + "\n"


def current() -> str:
    text = DOC.read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite docs/configuration.md")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(render())
        return 0
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{render()}{END}{tail}")
    print(f"settings tables written into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
