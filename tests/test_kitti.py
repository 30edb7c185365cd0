import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tlt_core.data.kitti import (
    KittiObject,
    clip_objects,
    format_kitti_line,
    list_frames,
    parse_kitti_line,
    read_label_file,
    read_labels,
    write_label_file,
)
from tlt_core.errors import DataError

DOC_LINE = "car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59"


def test_parse_documented_line():
    obj = parse_kitti_line(DOC_LINE)
    assert obj.class_name == "car"
    assert obj.box == (587.01, 173.33, 614.12, 200.12)
    assert (obj.height, obj.width, obj.length) == (1.65, 1.67, 3.64)
    assert (obj.x, obj.y, obj.z, obj.rotation_y) == (-0.65, 1.71, 46.70, -1.59)
    assert obj.score is None and not obj.difficult


def test_score_field_and_difficult():
    obj = parse_kitti_line("Pedestrian 0 2 0 1 2 3 4 0 0 0 0 0 0 0 0.75")
    assert obj.score == 0.75
    assert obj.class_name == "Pedestrian"  # kept as written
    assert obj.difficult


def test_dontcare_keeps_kitti_negative_fields():
    obj = parse_kitti_line(
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10"
    )
    assert obj.is_dontcare and obj.occlusion == -1


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("car 0 0 0 1 2 abc 4 0 0 0 0 0 0 0", "bbox x2", "not a number 'abc'"),
        ("car 0 0 0 1 2 3", "fields", "got 7"),
        ("car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 0.5 9", "fields", "got 17"),
        ("car 1.5 0 0 1 2 3 4 0 0 0 0 0 0 0", "truncation", "not in [0, 1]"),
        ("car 0 7 0 1 2 3 4 0 0 0 0 0 0 0", "occlusion", "not in 0..3"),
        ("car 0 0.5 0 1 2 3 4 0 0 0 0 0 0 0", "occlusion", "not an integer"),
        ("car 0 0 0 5 2 3 4 0 0 0 0 0 0 0", "bbox", "x2 3 <= x1 5"),
        ("car 0 0 0 1 4 3 4 0 0 0 0 0 0 0", "bbox", "y2 4 <= y1 4"),
        ("car 0 0 nan 1 2 3 4 0 0 0 0 0 0 0", "alpha", "not a finite number"),
    ],
)
def test_bad_lines_name_file_line_field(line, field, message):
    with pytest.raises(DataError) as info:
        parse_kitti_line(line, "labels/000012.txt", 3)
    text = str(info.value)
    assert text.startswith(f"labels/000012.txt:3: {field}: ")
    assert message in text


def test_read_strict_and_skip(tmp_path):
    path = tmp_path / "000012.txt"
    path.write_text(f"{DOC_LINE}\n\ncar 0 0 0 1 2 abc 4 0 0 0 0 0 0 0\n{DOC_LINE}\n")
    with pytest.raises(DataError, match=r"000012\.txt:3: bbox x2: not a number 'abc'"):
        read_label_file(path)
    read = read_labels(path, strict=False)
    assert read.n_skipped == 1 and len(read.objects) == 2
    assert [o.line for o in read.objects] == [1, 4]


def test_missing_and_binary_label_files(tmp_path):
    with pytest.raises(DataError, match="label file not found"):
        read_label_file(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00car")
    with pytest.raises(DataError, match="not UTF-8"):
        read_label_file(tmp_path / "bin.txt")


def test_clip_objects():
    inside = parse_kitti_line("car 0 0 0 10 10 20 20 0 0 0 0 0 0 0", line_no=1)
    over = parse_kitti_line("car 0 0 0 -5 10 120 20 0 0 0 0 0 0 0", line_no=2)
    outside = parse_kitti_line("car 0 0 0 150 10 160 20 0 0 0 0 0 0 0", line_no=3)
    kept, n_clipped = clip_objects([inside, over], 100, 50)
    assert n_clipped == 1 and kept[0] == inside and kept[1].box == (0.0, 10.0, 100.0, 20.0)
    with pytest.raises(DataError, match=r"^l\.txt:3: bbox: box 150 10 160 20 lies outside"):
        clip_objects([inside, outside], 100, 50, path="l.txt")
    kept, n_clipped = clip_objects([inside, outside], 100, 50, strict=False)
    assert kept == [inside] and n_clipped == 0


def test_write_label_file_is_atomic_and_round_trips(tmp_path):
    objs = [parse_kitti_line(DOC_LINE), parse_kitti_line("van 0.5 1 0 1 2 3 4 1 2 3 4 5 6 0.1 0.9")]
    path = write_label_file(tmp_path / "a" / "000001.txt", objs)
    assert read_label_file(path) == objs
    assert [p.name for p in path.parent.iterdir()] == ["000001.txt"]  # no temporary left
    assert format_kitti_line(objs[0], precision=2) == DOC_LINE


def test_list_frames(tmp_path):
    images, labels = tmp_path / "image_2", tmp_path / "label_2"
    images.mkdir()
    labels.mkdir()
    for name in ("000001.png", "000002.JPG", "000003.jpeg", "notes.md"):
        (images / name).write_bytes(b"x")
    for stem in ("000001", "000002", "000003", "000009"):
        (labels / f"{stem}.txt").write_text("")
    frames = list_frames(images, labels)
    assert [f.frame_id for f in frames] == ["000001", "000002", "000003"]
    assert frames[1].image_path.name == "000002.JPG"
    assert [f.frame_id for f in list_frames(images, labels, image_extension="png")] == ["000001"]
    (images / "000004.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"1 image\(s\) without a label file: 000004\.png"):
        list_frames(images, labels)
    (labels / "000004.txt").write_text("")
    (images / "000004.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="two images for frame '000004'"):
        list_frames(images, labels)
    with pytest.raises(DataError, match=r"no \.bmp images"):
        list_frames(images, labels, image_extension=".bmp")
    with pytest.raises(DataError, match="image directory not found"):
        list_frames(tmp_path / "missing", labels)


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
names = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "Pc", "Pd")), min_size=1, max_size=12
)


@st.composite
def kitti_objects(draw):
    x1, y1 = draw(finite), draw(finite)
    w = draw(st.floats(min_value=1e-3, max_value=1e4))
    h = draw(st.floats(min_value=1e-3, max_value=1e4))
    return KittiObject(
        class_name=draw(names),
        truncation=draw(st.floats(min_value=0, max_value=1)),
        occlusion=draw(st.integers(0, 3)),
        alpha=draw(finite),
        x1=x1, y1=y1, x2=x1 + w, y2=y1 + h,
        height=draw(finite), width=draw(finite), length=draw(finite),
        x=draw(finite), y=draw(finite), z=draw(finite), rotation_y=draw(finite),
        score=draw(st.none() | st.floats(min_value=0, max_value=1)),
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(kitti_objects())
def test_format_parse_round_trip(obj):
    assume(obj.x2 > obj.x1 and obj.y2 > obj.y1)  # the float sum can round back onto x1
    assert parse_kitti_line(format_kitti_line(obj)) == obj


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=120)
    | st.lists(
        st.sampled_from(["car", "0", "-1", "1e9", "x", "nan", "2.5", "DontCare"]), max_size=18
    ).map(" ".join)
)
def test_garbage_lines_raise_only_data_error(line):
    try:
        obj = parse_kitti_line(line, "g.txt", 1)
    except DataError as error:
        assert str(error).startswith("g.txt:1: ")
    else:
        assert obj.x2 > obj.x1 and obj.y2 > obj.y1
        assert all(math.isfinite(v) for v in obj.box)
