import importlib.util
import subprocess
import sys

import pytest

from tlt_core.cli import COMMANDS
from tlt_core.cli.ssd import SSD_COMMANDS


@pytest.mark.parametrize("module", [*COMMANDS.values(), *SSD_COMMANDS.values()])
def test_every_listed_command_module_exists(module):
    assert importlib.util.find_spec(module) is not None, module


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "tlt_core.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        assert name in out
