"""The README's commands run as written, in a fresh directory after a short `make demo`.

Convention (docs/developers/tests.md): every command of a fenced ```sh or ```console block in the README
is run with bash and must exit 0. In a ```console block a line starting `$ ` is a command, and the lines
after it, up to the next command, are what it prints: each must appear in its output, `…` standing for
any text. A block preceded by a comment starting `<!-- not run by the README test` is not run (`make demo`
and `make test` themselves: this test runs under the one and runs the other's demo itself).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
NOT_RUN = "<!-- not run by the README test"
DEMO = ".venv/bin/hub demo --duration 10 --no-view"  # `make demo`, bounded


@dataclass
class Command:
    line: int
    text: str
    prints: list[str] = field(default_factory=list)


@dataclass
class Block:
    line: int
    language: str
    body: list[str]
    run: bool


def blocks(text: str) -> list[Block]:
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w+)\s*", lines[i])
        if fence is None:
            i += 1
            continue
        end = lines.index("```", i + 1)
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        found.append(Block(i + 1, fence.group(1), lines[i + 1:end], not before.startswith(NOT_RUN)))
        i = end + 1
    return found


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    pending = ""
    for n, line in enumerate(block.body, start=block.line + 1):
        if block.language == "console":
            if line.startswith("$ "):
                found.append(Command(n, line[2:]))
            elif line.strip():
                assert found, f"README line {n}: output before any command"
                found[-1].prints.append(line.strip())
        elif line.strip() and not line.lstrip().startswith("#"):
            pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                found.append(Command(n, pending.strip()))
                pending = ""
    return found


def readme_commands() -> list[Command]:
    return [command for block in blocks(README.read_text(encoding="utf-8"))
            if block.run and block.language in ("sh", "console") for command in commands(block)]


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    # A fresh shell: the project's environment is not activated, so `hub` alone is not a command.
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                           if Path(p).resolve() != Path(sys.prefix, "bin").resolve())
    return subprocess.run(["bash", "-c", command], cwd=cwd, env={**env, "PATH": path, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory as a fresh clone is after `make demo`: the environment in `.venv`, a demo's `var/demo`."""
    workdir = tmp_path_factory.mktemp("clone")
    venv = Path(sys.prefix)
    assert (venv / "bin/hub").exists(), f"no hub command in {venv}: run the tests from the project's .venv"
    (workdir / ".venv").symlink_to(venv)
    demo = run(DEMO, workdir)
    assert demo.returncode == 0, demo.stderr[-3000:]
    # The demo's own hints are commands that run here too.
    assert "HUB_STORE_PATH=var/demo/hub.sqlite3 .venv/bin/hub alerts list" in demo.stdout, demo.stdout
    return workdir


def test_the_readme_marks_few_blocks_not_run() -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    not_run = [block for block in found if not block.run]
    assert all(re.match(r"make (demo|test)\b", line) for block in not_run for line in block.body
               if line.strip()), "only `make demo` and `make test` may go untested"
    assert len(not_run) <= 3
    assert len(readme_commands()) >= 5


@pytest.mark.integration
@pytest.mark.parametrize("command", readme_commands(), ids=lambda command: command.text)
def test_readme_command_runs_as_written(command: Command, after_demo: Path) -> None:
    result = run(command.text, after_demo)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"README line {command.line}: `{command.text}` failed:\n{output[-3000:]}"
    for expected in command.prints:
        pattern = ".*".join(re.escape(part) for part in expected.split("…"))
        assert re.search(pattern, output), (
            f"README line {command.line}: `{command.text}` did not print {expected!r}:\n{output[-3000:]}")
