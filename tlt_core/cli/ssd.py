"""``tlt ssd <task>``: the SSD network's tasks, as TLT 3.0 names them."""

from __future__ import annotations

import argparse

SSD_COMMANDS: dict[str, str] = {
    "train": "tlt_core.cli.ssd_train",
    "evaluate": "tlt_core.cli.ssd_evaluate",
    "inference": "tlt_core.cli.ssd_inference",
    "prune": "tlt_core.cli.ssd_prune",
    "export": "tlt_core.cli.ssd_export",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from tlt_core.cli import register_table

    parser = subparsers.add_parser("ssd", help="SSD object detection: train, evaluate, ...")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    register_table(tasks, SSD_COMMANDS)
