"""dataset-convert: throughput against a plain read of the same files, and peak memory.

- images/s of :func:`tlt_core.data.convert.convert_kitti` (TensorFlow already imported)
  against reading every image and label file's bytes in the same run (both with a warm page
  cache); target >= 0.7x. With a warm cache a read is a memory copy, while a conversion also
  parses labels, builds and writes a record (the same bytes again, plus CRCs), so a second
  row compares it with a read+write copy of the files, for context.
- peak RSS of a whole conversion run in a fresh subprocess for 1x and 10x the images (the
  10x set hard-links the 1x files under new names); targets: 10x within 10 % of 1x, and
  below 1 GiB. The conversion streams frames, so memory must not grow with the dataset.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench import BenchRow

GIB = 1024**3


def _make_dataset(root: Path, n_base: int, copies: int) -> tuple[Path, Path]:
    """``copies`` x ``n_base`` frames: generated once, then hard-linked under new names."""
    from tlt_core.data.sample import generate_sample_data

    base = generate_sample_data(root / "base", num_train=n_base, num_val=0, seed=1)
    images, labels = root / f"x{copies}" / "image_2", root / f"x{copies}" / "label_2"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for copy in range(copies):
        for image in sorted(base.train_image_dir.iterdir()):
            name = f"{copy:03d}{image.stem}"
            os.link(image, images / f"{name}.png")
            os.link(base.train_label_dir / f"{image.stem}.txt", labels / f"{name}.txt")
    return images, labels


def _plain_read(images: Path, labels: Path) -> float:
    start = time.perf_counter()
    total = 0
    for directory in (images, labels):
        for path in directory.iterdir():
            total += len(path.read_bytes())
    assert total > 0
    return time.perf_counter() - start


def _copy(images: Path, labels: Path, target: Path) -> float:
    """Read every file and write its bytes to a new file: the least a conversion must do."""
    target.mkdir(parents=True)
    start = time.perf_counter()
    for directory in (images, labels):
        for path in directory.iterdir():
            (target / path.name).write_bytes(path.read_bytes())
    return time.perf_counter() - start


def _convert(images: Path, labels: Path, prefix: Path) -> float:
    from tlt_core.data.convert import ConvertOptions, convert_kitti

    options = ConvertOptions(image_dir=images, label_dir=labels, num_shards=4, val_split=20)
    start = time.perf_counter()
    convert_kitti(options, prefix)
    return time.perf_counter() - start


_RSS_CHILD = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from tlt_core.data.convert import ConvertOptions, convert_kitti
    images, labels, prefix = map(Path, sys.argv[1:4])
    convert_kitti(ConvertOptions(image_dir=images, label_dir=labels, num_shards=4,
                                 val_split=20), prefix)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB
    """
)


def _peak_rss(images: Path, labels: Path, prefix: Path) -> int:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(images), str(labels), str(prefix)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return int(proc.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[BenchRow]:
    n_base = 20 if quick else 80
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="bench_convert.") as tmp:
        root = Path(tmp)
        images1, labels1 = _make_dataset(root, n_base, 1)
        images10, labels10 = _make_dataset(root / "big", n_base, 10)
        import tensorflow  # noqa: F401  (import cost is not part of the throughput)

        _plain_read(images10, labels10)  # warm the page cache for both measurements
        _convert(images1, labels1, root / "out" / "warmup")
        read_s = min(_plain_read(images10, labels10) for _ in range(3))
        convert_s = min(_convert(images10, labels10, root / "out" / f"t{i}") for i in range(2))
        copy_s = min(_copy(images10, labels10, root / "copy" / str(i)) for i in range(2))
        n = 10 * n_base
        rate, base_rate = n / convert_s, n / read_s
        rows.append(BenchRow(
            benchmark=f"dataset-convert images/s ({n} PNG, ~120 KiB each)", value=rate,
            unit="images/s", baseline="plain read of the image+label bytes",
            baseline_value=base_rate, ratio=rate / base_rate, target=">= 0.7x",
            ok=rate / base_rate >= 0.7,
        ))  # fmt: skip
        rows.append(BenchRow(
            benchmark="dataset-convert images/s", value=rate, unit="images/s",
            baseline="read + write copy of the same files", baseline_value=n / copy_s,
            ratio=copy_s / convert_s, target="(context: the I/O floor)", ok=None,
        ))  # fmt: skip
        rss1 = _peak_rss(images1, labels1, root / "rss" / "one")
        rss10 = _peak_rss(images10, labels10, root / "rss" / "ten")
        rows.append(BenchRow(
            benchmark=f"dataset-convert peak RSS, {n} images (10x)", value=rss10 / 2**20,
            unit="MiB", baseline=f"same, {n_base} images (1x)", baseline_value=rss1 / 2**20,
            ratio=rss10 / rss1, target="<= 1.1x and < 1 GiB",
            ok=rss10 <= 1.1 * rss1 and rss10 < GIB,
        ))  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
