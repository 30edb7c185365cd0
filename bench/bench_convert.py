"""dataset-convert: throughput against a plain read of the same files, and peak memory.

- images/s of :func:`tlt_core.data.convert.convert_kitti` against reading every image and
  label file's bytes, measured in the same run, passes interleaved, best of a few each:
  - cold page cache (the row the >= 0.7x target applies to): real datasets are far bigger
    than RAM, so neither pass may find the files in memory. Before each pass every input
    file is evicted with ``posix_fadvise(DONTNEED)`` (after ``fdatasync``: only clean pages
    can be dropped); the shards a conversion wrote are synced and evicted after it, outside
    its time, so their write-back does not slow the next pass. Directory entries and
    inodes stay cached (only ``drop_caches`` evicts those, and that is machine-wide).
  - warm page cache, for context: a read is then a memory copy, while a conversion also
    parses labels, encodes and checksums a record and writes the bytes again.
  - a cold read against a warm read of the same files shows whether eviction worked here.
  - the conversion hints the kernel to read ahead (``posix_fadvise(WILLNEED)``); a cold
    read given the same hints shows how much of its speed comes from that (context).
  The dataset's files are copies, not hard links, so evicting one file does not leave its
  twin's pages cached.
- peak RSS of a whole conversion run in a fresh subprocess for 1x and 10x the images;
  targets: 10x within 10 % of 1x, and below 1 GiB. The conversion streams frames, so
  memory must not grow with the dataset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path

from bench import BenchRow

GIB = 1024**3


def _make_dataset(root: Path, n_base: int, copies: int) -> tuple[Path, Path]:
    """``copies`` x ``n_base`` frames: generated once, then copied under new names."""
    from tlt_core.data.sample import generate_sample_data

    base = generate_sample_data(root / "base", num_train=n_base, num_val=0, seed=1)
    images, labels = root / f"x{copies}" / "image_2", root / f"x{copies}" / "label_2"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for copy in range(copies):
        for image in sorted(base.train_image_dir.iterdir()):
            name = f"{copy:03d}{image.stem}"
            shutil.copyfile(image, images / f"{name}.png")
            shutil.copyfile(base.train_label_dir / f"{image.stem}.txt", labels / f"{name}.txt")
    return images, labels


def _files(*directories: Path) -> list[Path]:
    return [path for directory in directories for path in directory.iterdir() if path.is_file()]


def evict(paths: Iterable[Path]) -> None:
    """Drop the files' pages from the page cache (written pages are flushed first)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _plain_read(images: Path, labels: Path) -> float:
    start = time.perf_counter()
    total = 0
    for directory in (images, labels):
        for path in directory.iterdir():
            total += len(path.read_bytes())
    assert total > 0
    return time.perf_counter() - start


def _hinted_read(images: Path, labels: Path) -> float:
    """A plain read given the conversion's read-ahead hints: the floor for its reads."""
    from tlt_core.data.convert import HINT_AHEAD, will_need

    start = time.perf_counter()
    paths = [path for directory in (images, labels) for path in directory.iterdir()]
    for path in paths[:HINT_AHEAD]:
        will_need(path)
    total = 0
    for i, path in enumerate(paths):
        if i + HINT_AHEAD < len(paths):
            will_need(paths[i + HINT_AHEAD])
        total += len(path.read_bytes())
    assert total > 0
    return time.perf_counter() - start


def _convert(images: Path, labels: Path, out_dir: Path) -> float:
    """Seconds of one conversion; its shards are then synced, evicted and removed."""
    from tlt_core.data.convert import ConvertOptions, convert_kitti

    options = ConvertOptions(image_dir=images, label_dir=labels, num_shards=4, val_split=20)
    start = time.perf_counter()
    result = convert_kitti(options, out_dir / "train")
    seconds = time.perf_counter() - start
    evict(result.shards)
    shutil.rmtree(out_dir)
    return seconds


_RSS_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bench import peak_rss_bytes
    from tlt_core.data.convert import ConvertOptions, convert_kitti
    images, labels, prefix = map(Path, sys.argv[1:4])
    convert_kitti(ConvertOptions(image_dir=images, label_dir=labels, num_shards=4,
                                 val_split=20), prefix)
    print(peak_rss_bytes())
    """
)


def _peak_rss(images: Path, labels: Path, prefix: Path) -> int:
    repo = str(Path(__file__).resolve().parent.parent)  # for `import bench` in the child
    python_path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": python_path}
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(images), str(labels), str(prefix)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return int(proc.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[BenchRow]:
    n_base, repeats = (20, 3) if quick else (80, 5)
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="bench_convert.") as tmp:
        root = Path(tmp)
        images1, labels1 = _make_dataset(root, n_base, 1)
        images10, labels10 = _make_dataset(root / "big", n_base, 10)
        inputs = _files(images10, labels10)
        out = root / "out"
        _convert(images1, labels1, out)  # warm-up: first imports
        times: dict[str, list[float]] = {name: [] for name in (
            "read", "convert", "hinted read", "warm read", "warm convert")}  # fmt: skip
        for _ in range(repeats):  # interleaved, so load from other processes hits all alike
            evict(inputs)
            times["read"].append(_plain_read(images10, labels10))
            evict(inputs)
            times["convert"].append(_convert(images10, labels10, out))
            evict(inputs)
            times["hinted read"].append(_hinted_read(images10, labels10))
            _plain_read(images10, labels10)  # now every file is cached
            times["warm read"].append(_plain_read(images10, labels10))
            times["warm convert"].append(_convert(images10, labels10, out))
        n = 10 * n_base
        rate = {name: n / min(seconds) for name, seconds in times.items()}
        what = f"{n} PNG ~105 KiB + labels"
        rows.append(BenchRow(
            benchmark=f"dataset-convert images/s, cold page cache ({what})",
            value=rate["convert"], unit="images/s",
            baseline="plain read of the image+label bytes, cold cache",
            baseline_value=rate["read"], ratio=rate["convert"] / rate["read"],
            target=">= 0.7x", ok=rate["convert"] / rate["read"] >= 0.7,
        ))  # fmt: skip
        rows.append(BenchRow(
            benchmark="dataset-convert images/s, cold page cache", value=rate["convert"],
            unit="images/s", baseline="read with the same read-ahead hints, cold cache",
            baseline_value=rate["hinted read"], ratio=rate["convert"] / rate["hinted read"],
            target="(context: the conversion's I/O floor)", ok=None,
        ))  # fmt: skip
        rows.append(BenchRow(
            benchmark="dataset-convert images/s, warm page cache",
            value=rate["warm convert"], unit="images/s",
            baseline="plain read, warm cache", baseline_value=rate["warm read"],
            ratio=rate["warm convert"] / rate["warm read"], target="(context)", ok=None,
        ))  # fmt: skip
        rows.append(BenchRow(
            benchmark="plain read images/s after eviction (cold)", value=rate["read"],
            unit="images/s", baseline="plain read, warm cache",
            baseline_value=rate["warm read"], ratio=rate["read"] / rate["warm read"],
            target="(context: < 1x shows eviction works)", ok=None,
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
