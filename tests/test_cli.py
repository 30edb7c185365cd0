import importlib.util
import subprocess
import sys

import pytest

from tlt_core.cli import COMMANDS, TASK_COMMANDS, build_parser
from tlt_core.errors import SpecError
from tlt_core.networks import NETWORKS


@pytest.mark.parametrize(
    "module", [c.module for c in (*COMMANDS.values(), *TASK_COMMANDS.values())]
)
def test_every_listed_command_module_exists(module):
    assert importlib.util.find_spec(module) is not None, module


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "tlt_core.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in [*COMMANDS, *NETWORKS]:
        assert name in out


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_every_network_gets_each_of_its_tasks(network):
    """``tlt <network> <task>`` exists for every task the network lists, with the shared
    -e/-k/-m options declared once (in cli/_common)."""
    parser = build_parser()
    for task in NETWORKS[network].tasks:
        args = {
            "train": ["-e", "s.txt", "-r", "out", "-k", "key"],
            "evaluate": ["-e", "s.txt", "-m", "m.tlt"],
            "inference": ["-e", "s.txt", "-m", "m.tlt", "-i", "in", "-o", "out"],
            "prune": ["-m", "m.tlt", "-o", "p.tlt", "-k", "key"],
            "export": ["-e", "s.txt", "-m", "m.tlt", "-k", "key"],
        }[task]
        parsed = parser.parse_args([network, task, *args])
        assert parsed.network == network and parsed.task == task and callable(parsed.func)


# Commands that must start without TensorFlow (they are run on machines and in containers
# that may not even have it, and TensorFlow costs seconds and hundreds of MB to import).
LIGHT = [
    ["dataset-convert", "-d", "missing.txt", "-o", "out/x"],
    ["sample-data", "--help"],
    ["evaluate-labels", "--help"],
    ["pipeline", "--help"],
    ["--help"],
    ["ssd", "--help"],
    ["ssd", "train", "--help"],
]

_PROBE = """
import sys
from tlt_core.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
heavy = sorted(m for m in ("tensorflow", "keras", "onnx", "tf2onnx") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize("argv", LIGHT, ids=" ".join)
def test_light_commands_never_import_tensorflow(argv, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    heavy = [line for line in done.stdout.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], (argv, done.stdout[-500:], done.stderr[-500:])
    if argv[0] == "dataset-convert":
        # A missing spec file: one line naming it, SpecError's exit status (2, as for every
        # other spec problem).
        err = done.stderr.strip().splitlines()
        assert done.returncode == SpecError.exit_code == 2, done.stderr
        assert len(err) == 1 and "missing.txt: no such spec file" in err[0], done.stderr
    else:
        assert done.returncode == 0, done.stderr
