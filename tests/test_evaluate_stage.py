"""``tlt ssd evaluate``: the stage on a real (untrained) model, its reports and its errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest

from tlt_core import modelfile
from tlt_core.cli import main as cli_main
from tlt_core.data.sample import generate_sample_data
from tlt_core.errors import ModelFileError
from tlt_core.inference_runner import KerasRunner, open_runner
from tlt_core.networks import get_network
from tlt_core.networks.ssd.model import build_ssd
from tlt_core.networks.ssd.sample_spec import sample_experiment_spec
from tlt_core.networks.ssd.spec import load_experiment
from tlt_core.stages.evaluate import evaluate
from tlt_core.train.loop import model_metadata

SSD = get_network("ssd")


@pytest.fixture(autouse=True)
def _reset_logging():
    """``tlt`` called in-process points the root logger at pytest's captured stderr."""
    yield
    logging.getLogger().handlers.clear()


KEY = "eval-key"
TINY = dict(arch="resnet", nlayers=10, output_width=64, output_height=64, batch_size=4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    generate_sample_data(root / "data", num_train=2, num_val=6, seed=3, width=160, height=120)
    spec = root / "spec.txt"
    spec.write_text(sample_experiment_spec(root / "data", **TINY))
    experiment = load_experiment(spec)
    keras.utils.set_random_seed(5)
    model = build_ssd(experiment, len(experiment.class_names))
    path = modelfile.save_model(root / "m.tlt", model, KEY, model_metadata(SSD, experiment, model))
    return root, spec, experiment, model, path


def test_evaluate_writes_reports_and_matches_validation(setup, tmp_path):
    _root, spec, experiment, model, path = setup
    result = evaluate(path, spec, KEY, output_dir=tmp_path / "out")
    assert result.num_images == 6 and result.mode == "SAMPLE" and result.iou_threshold == 0.5
    assert set(result.per_class_ap) == {"car", "cyclist", "pedestrian"}
    assert 0.0 <= result.mAP <= 1.0 and "INTEGRATE" in result.other_mode_mAP
    assert result.mAP == pytest.approx(np.mean(list(result.per_class_ap.values())))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "pr_curve_car.png",
        "pr_curve_cyclist.png",
        "pr_curve_pedestrian.png",
        "results.json",
        "results.txt",
    ]
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary["mAP"] == pytest.approx(result.mAP) and summary["model"] == str(path)
    assert "mAP" in (tmp_path / "out" / "results.txt").read_text()
    # The in-memory model over the same pipeline gives the same numbers (one code path).
    from tlt_core.evaluate.collect import collect_predictions, score

    runner = KerasRunner(model, SSD)
    again = score(SSD, experiment, collect_predictions(SSD, experiment, runner))
    assert again.value == pytest.approx(result.mAP)


def test_evaluate_draws_frames_for_the_report(setup, tmp_path):
    """The report's frames: each validation frame once (fewer than asked), drawn from the
    images the evaluation saw, with the same totals as the AP counts."""
    import cv2

    from tlt_core.pipeline_support import evaluation_report_html

    _root, spec, _experiment, _model, path = setup
    result = evaluate(path, spec, KEY, output_dir=tmp_path, frames=8, frame_threshold=0.0)
    assert len(result.frames) == 6
    assert len({t.frame_id for t in result.frames}) == 6
    ap = result.ap_result
    assert sum(t.true_positives for t in result.frames) == sum(ap.num_true_positives.values())
    assert sum(t.true_positives + t.misses for t in result.frames) == sum(
        ap.num_ground_truth.values()
    )
    image = cv2.imdecode(np.frombuffer(result.frames[0].image, np.uint8), cv2.IMREAD_COLOR)
    # The source frames are 160x120: drawn at that aspect ratio, 320 pixels high.
    assert image.shape[:2] == (320, 427) and image.std() > 5  # a picture, not a blank
    page = evaluation_report_html(result, "Evaluation", 0.0)
    assert page.count('<figure class="tile') == 6 and page.count("<img") == 6 + 3


def test_runner_protocol(setup):
    _, _, _experiment, _, path = setup
    runner = open_runner(path, KEY, SSD)
    assert runner.input_shape == (64, 64, 3) and runner.num_classes == 3
    conf, loc = runner.predict(np.zeros((2, 64, 64, 3), np.float32))
    assert conf.shape[0] == 2 and conf.shape[-1] == 4 and loc.shape[-1] == 4
    np.testing.assert_allclose(conf.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ModelFileError, match="unsupported model file type"):
        open_runner(path.with_suffix(".bin"), KEY, SSD)


def test_mismatched_spec_and_wrong_key(setup, tmp_path):
    root, _, _, _, path = setup
    other = tmp_path / "spec96.txt"
    other.write_text(sample_experiment_spec(root / "data", **{**TINY, "output_width": 96}))
    with pytest.raises(ModelFileError, match="does not match"):
        evaluate(path, other, KEY)
    with pytest.raises(ModelFileError, match="wrong key"):
        evaluate(path, other, "nope")


def test_cli_one_line_errors(setup, capsys):
    _, spec, _, _, path = setup
    code = cli_main(["ssd", "evaluate", "-m", str(path), "-e", str(spec), "-k", "bad"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ModelFileError.exit_code and len(err) == 1 and "wrong key" in err[0]
    code = cli_main(
        ["ssd", "evaluate", "-m", str(Path(path).with_name("x.tlt")), "-e", str(spec), "-k", KEY]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "x.tlt: no such" in err[0]


def test_cli_prints_the_table_once_on_stdout(setup, capsys, tmp_path):
    _, spec, _, _, path = setup
    out_dir = tmp_path / "results"
    code = cli_main(
        ["ssd", "evaluate", "-m", str(path), "-e", str(spec), "-k", KEY, "-o", str(out_dir)]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.count("mAP") == 1 and captured.out.count("cyclist") == 1
    assert "cyclist" not in captured.err, "the table goes to stdout only"
    assert "printed on stdout" in captured.err and str(out_dir / "results.txt") in captured.err
