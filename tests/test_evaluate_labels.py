import json
from pathlib import Path

import pytest

from tlt_core.cli import main
from tlt_core.errors import DataError, UsageError
from tlt_core.stages.evaluate_labels import evaluate_labels


def line(cls, x1, y1, x2, y2, occlusion=0, score=None):
    fields = [
        cls,
        "0.00",
        str(occlusion),
        "0.00",
        f"{x1:.2f}",
        f"{y1:.2f}",
        f"{x2:.2f}",
        f"{y2:.2f}",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]
    if score is not None:
        fields.append(f"{score:.4f}")
    return " ".join(fields)


def write(directory: Path, frame: str, lines: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{frame}.txt"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


@pytest.fixture
def dataset(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write(
        gt,
        "000000",
        [
            line("Car", 0, 0, 10, 10),
            line("Pedestrian", 50, 0, 60, 20),
            line("DontCare", 100, 100, 120, 120, occlusion=-1),
            line("car", 200, 0, 210, 10, occlusion=2),  # difficult
        ],
    )
    write(gt, "000001", [line("car", 0, 0, 10, 10)])
    write(gt, "000002", [line("pedestrian", 5, 5, 15, 25)])  # no prediction file
    write(
        pred,
        "000000",
        [
            line("car", 0, 0, 10, 10, score=0.9),
            line("CAR", 200, 0, 210, 10, score=0.95),  # on the difficult car: ignored
            line("pedestrian", 50, 1, 60, 20, score=0.6),
            line("dontcare", 100, 100, 120, 120, score=0.99),
        ],
    )
    write(
        pred,
        "000001",
        [line("car", 300, 0, 310, 10, score=0.8), line("car", 0, 0, 10, 11, score=0.7)],
    )
    return gt, pred


def test_stage_computes_ap_and_writes_reports(dataset, tmp_path):
    gt, pred = dataset
    out = evaluate_labels(
        gt,
        pred,
        mode="integrate",
        json_path=tmp_path / "out" / "ap.json",
        pr_curve_dir=tmp_path / "curves",
    )
    r = out.result
    assert r.class_names == ("car", "pedestrian")
    # car: TP .9, FP .8, TP .7 over 2 positives (the difficult one ignored) -> 0.5 + 0.5*2/3.
    assert r.per_class_ap["car"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert r.num_ignored["car"] == 1 and r.num_difficult["car"] == 1
    # pedestrian: 1 TP over 2 positives (frame 2 has no predictions) -> 0.5.
    assert r.per_class_ap["pedestrian"] == pytest.approx(0.5)
    assert out.num_frames == 3 and out.num_prediction_files == 2
    assert "car           AP    0.833" in out.table
    assert "              mAP   0.667" in out.table
    data = json.loads((tmp_path / "out" / "ap.json").read_text())
    assert data["mAP"] == pytest.approx(r.mAP) and data["mode"] == "INTEGRATE"
    assert data["classes"]["car"]["num_true_positives"] == 2
    assert sorted(p.name for p in out.pr_curves) == ["pr_curve_car.png", "pr_curve_pedestrian.png"]
    for path in out.pr_curves:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "curves").glob(".*"))  # no temporary files left


def test_include_difficult_and_class_selection(dataset):
    gt, pred = dataset
    out = evaluate_labels(gt, pred, mode="INTEGRATE", include_difficult=True, classes=["CAR"])
    assert out.result.class_names == ("car",)
    # car ranked: .95 TP (difficult now counts), .9 TP, .8 FP, .7 TP over 3 positives.
    assert out.result.per_class_ap["car"] == pytest.approx(2 / 3 + 1 / 3 * 3 / 4)


def test_missing_score_names_file_and_line(dataset):
    gt, pred = dataset
    path = write(
        pred, "000001", [line("car", 0, 0, 10, 10, score=0.5), "", line("car", 1, 1, 9, 9)]
    )
    with pytest.raises(DataError) as info:
        evaluate_labels(gt, pred)
    assert str(info.value).startswith(f"{path}:3: score:")


def test_prediction_without_ground_truth_is_an_error(dataset):
    gt, pred = dataset
    orphan = write(pred, "000099", [line("car", 0, 0, 10, 10, score=0.5)])
    with pytest.raises(DataError, match=r"000099\.txt"):
        evaluate_labels(gt, pred)
    orphan.unlink()
    with pytest.raises(UsageError):
        evaluate_labels(gt, pred, mode="VOC")
    with pytest.raises(UsageError):
        evaluate_labels(gt, pred, iou_threshold=0.0)
    with pytest.raises(DataError):
        evaluate_labels(gt / "nope", pred)


def test_cli_prints_table_and_reports_errors_in_one_line(dataset, tmp_path, capsys):
    gt, pred = dataset
    json_path = tmp_path / "cli.json"
    code = main(
        [
            "evaluate-labels",
            "-g",
            str(gt),
            "-p",
            str(pred),
            "-a",
            "sample",
            "--iou",
            "0.5",
            "--classes",
            "car,pedestrian",
            "--json",
            str(json_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "mAP" in out and out.count("*" * 31) == 2
    assert json.loads(json_path.read_text())["mode"] == "SAMPLE"
    write(pred, "000001", [line("car", 0, 0, 10, 10)])
    code = main(["evaluate-labels", "-g", str(gt), "-p", str(pred)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == DataError.exit_code and len(err) == 1 and "000001.txt:1: score" in err[0]


def test_class_only_in_predictions_is_reported_and_kept_out_of_map(dataset, tmp_path, capsys):
    gt, pred = dataset
    write(
        pred,
        "000002",
        [
            line("wastecontainer", 0, 0, 10, 10, score=0.9),
            line("wastecontainer", 20, 0, 30, 10, score=0.4),
        ],
    )
    found = evaluate_labels(gt, pred, mode="INTEGRATE", json_path=tmp_path / "found.json")
    r = found.result
    assert r.class_names == ("car", "pedestrian", "wastecontainer")
    assert r.classes_without_ground_truth == ("wastecontainer",)
    # The mean over the classes with ground truth only (the two of the fixture).
    assert r.mAP == pytest.approx((0.5 + 0.5 * 2 / 3 + 0.5) / 2)
    assert "wastecontainer  AP    no ground truth (2 false positives)" in found.table
    assert "car             AP    0.833" in found.table  # column sized to the longest name
    data = json.loads((tmp_path / "found.json").read_text())
    assert data["classes_without_ground_truth"] == ["wastecontainer"]
    assert data["mAP_classes"] == ["car", "pedestrian"]
    entry = data["classes"]["wastecontainer"]
    assert entry["no_ground_truth"] and entry["ap"] is None
    assert entry["num_false_positives"] == 2
    assert data["classes"]["car"]["no_ground_truth"] is False

    # --classes fixes the set: the named classes only, still no mAP for the one without gt.
    args = ["-g", str(gt), "-p", str(pred), "-a", "integrate", "--classes", "car,wastecontainer"]
    code = main(["evaluate-labels", *args])
    out = capsys.readouterr().out
    assert code == 0
    assert "pedestrian" not in out and "no ground truth (2 false positives)" in out
    assert f"mAP   {round(0.5 + 0.5 * 2 / 3, 3)}" in out
