"""Regenerate the CLI reference in README.md from every command's ``--help``.

Run ``python scripts/cli_reference.py`` after changing a command;
``tests/test_readme.py`` fails while the README is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from detect.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def reference() -> str:
    """Markdown with the help of the group and of each command."""
    runner = CliRunner()
    parts = []
    for name in [None, *sorted(cli.commands)]:
        args = ["--help"] if name is None else [name, "--help"]
        text = runner.invoke(cli, args, prog_name="detect", terminal_width=100).output.rstrip()
        title = "detect" if name is None else f"detect {name}"
        parts.append(f"### `{title}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def render(readme: str) -> str:
    """``readme`` with the block between the markers replaced."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference()}{END}{tail}"


if __name__ == "__main__":
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    README.write_text(new, encoding="utf-8")
