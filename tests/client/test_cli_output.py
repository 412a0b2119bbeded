"""How `pedigree` talks to people and to CI logs: every --help has an example and shows its
defaults; progress is a bar on a terminal and plain lines elsewhere; it loads only the command
it runs."""

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pedigree_client.cli import build_parser, main
from pedigree_client.cli.common import COMMANDS as COMMAND_MODULES
from tests.registry.test_artefacts import save_small_model


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _commands(command, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def _meaningful_defaults(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if action.default not in (None, False, [], "", argparse.SUPPRESS)
    ]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "pedigree")
def test_every_help_has_an_example_and_shows_defaults(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    _, examples = text.split("\nexamples:\n")
    assert "\n  pedigree " in f"\n{examples}"
    flat = " ".join(text.split())
    for action in _meaningful_defaults(COMMANDS[path]):
        assert f"(default: {action.default})" in flat, (action.option_strings, text)


def test_the_commands_of_the_issue_are_there():
    for path in [
        ("datasets", "register"),
        ("suites", "list"),
        ("versions", "update"),
        ("hold", "place"),
        ("hold", "lift"),
    ]:
        assert path in COMMANDS


def test_progress_is_plain_lines_off_a_terminal_and_a_bar_on_one(tmp_path, capsys, monkeypatch):
    weights = save_small_model(tmp_path / "model" / "model.safetensors")
    monkeypatch.delenv("PEDIGREE_TOKEN", raising=False)

    assert main(["artefacts", "inspect", str(weights)]) == 0
    err = capsys.readouterr().err
    assert "Hashing model.safetensors: " in err and "(100%)" in err
    assert "Hashing model.safetensors: done in " in err
    assert "\r" not in err

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["artefacts", "inspect", str(weights)]) == 0
    err = capsys.readouterr().err
    assert "\r" in err and "Hashing model.safetensors" in err  # tqdm redraws its line
    assert "done in" not in err


def test_each_module_adds_the_commands_listed_for_it():
    for module in {module for module, _ in COMMAND_MODULES.values()}:
        commands = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"pedigree_client.cli.{module}").add_commands(commands)
        assert set(commands.choices) == {n for n, (m, _) in COMMAND_MODULES.items() if m == module}


LOADED = """
import json, sys
from pedigree_client.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*argv: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "client")}
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *argv], capture_output=True, text=True, env=env, check=True
    )
    assert "usage: pedigree" in result.stdout
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_only_the_command_run_is_imported():
    heavy = {"requests", "tqdm", "safetensors", "numpy", "pedigree_client.client"}
    commands = {f"pedigree_client.cli.{module}" for module, _ in COMMAND_MODULES.values()}

    loaded = _loaded("--help")
    assert not (heavy | commands) & loaded

    loaded = _loaded("--url", "http://127.0.0.1:9", "gate", "--help")
    assert (heavy | commands) & loaded == {"pedigree_client.cli.gate"}
