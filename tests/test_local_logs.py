"""A local run's terminal: a line per task start and end, the lines a person follows; the
whole output of each task in ``logs/<task>.log``."""

import io

import pytest
from kfp import dsl, local

from pipelines.local_logs import routed_task_logs


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def chatty(lines: int) -> str:
    import sys

    print('{"executor_input": "a long JSON line"}')
    for i in range(lines):
        print(f"12:00:00 INFO tlt_core.data.pipeline: detail {i}")
    print("12:00:01 INFO tlt_core.train.trainer: epoch 1/2: loss 1.2345, lr 0.01, 3.0 s")
    print(
        "E0000 00:00:1796188073.330553 6287 node_def_util.cc:682] NodeDef mentions attribute "
        "use_unbounded_threadpool which is not in the op definition",
        file=sys.stderr,
    )
    print("12:00:02 WARNING tlt_core.stages.convert: engine NOT built: no tensorrt")
    print("[KFP Executor 2026-12-02 12:00:03,473 INFO]: epoch 2/2: loss 1.0, lr 0.001, 3.0 s")
    print("[KFP Executor 2026-12-02 12:00:04,001 INFO]: wrote /tmp/x")
    print("[KFP Executor 2026-12-02 12:00:05,001 WARNING]: target x86: engine NOT built")
    return "done"


@dsl.pipeline
def two_chatty_tasks(lines: int = 200):
    first = chatty(lines=lines)
    chatty(lines=lines).after(first)


@pytest.mark.parametrize("verbose", [False, True])
def test_terminal_shows_task_lines_and_logs_keep_everything(tmp_path, verbose):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    terminal = io.StringIO()
    with routed_task_logs(tmp_path / "logs", verbose=verbose, terminal=terminal) as run_log:
        two_chatty_tasks(lines=200)
    shown = terminal.getvalue().splitlines()
    logs = sorted(p.name for p in (tmp_path / "logs").glob("*.log"))
    assert logs == ["chatty-2.log", "chatty.log", "pipeline.log"]
    task_log = (tmp_path / "logs" / "chatty.log").read_text()
    assert "detail 199" in task_log and "use_unbounded_threadpool" in task_log
    assert [t.task for t in run_log.timings] == ["chatty", "chatty-2"]
    assert all(t.ok for t in run_log.timings)
    if verbose:
        assert len(shown) > 400 and any("detail 199" in line for line in shown)
        return
    # start, epochs, warnings, done per task: nothing else.
    assert len(shown) == 12, shown
    assert shown[0].endswith("start chatty") and " done  chatty (" in shown[5]
    assert shown[1] == (
        "    chatty: 12:00:01 INFO tlt_core.train.trainer: epoch 1/2: loss 1.2345, lr 0.01, 3.0 s"
    )
    assert "engine NOT built" in shown[2]
    assert shown[3] == "    chatty: 12:00:03 epoch 2/2: loss 1.0, lr 0.001, 3.0 s"
    assert shown[4] == "    chatty: 12:00:05 WARNING target x86: engine NOT built"
    assert not any("use_unbounded_threadpool" in line for line in shown)
    summary = run_log.summary_lines()
    assert summary[0].startswith("stage timings") and len(summary) == 3


def test_engine_outcomes_are_one_line_each(tmp_path):
    """The summary names each engine outcome once, with the engines it applies to."""
    import json

    from pipelines.local_run import _engine_lines

    reason = "tensorrt Python package not installed"
    for target in ("x86-t4", "jetson-orin"):
        folder = tmp_path / "engines" / target
        folder.mkdir(parents=True)
        report = {p: {"status": "skipped", "reason": reason} for p in ("fp16", "int8")}
        if target == "x86-t4":
            report["fp32"] = {"status": "built"}
        (folder / "build_report.json").write_text(json.dumps(report))
    assert _engine_lines(tmp_path) == [
        f"  engines jetson-orin/fp16, jetson-orin/int8, x86-t4/fp16, x86-t4/int8: skipped ({reason})",
        "  engines x86-t4/fp32: built",
    ]
