"""Soft-start annealing at its breakpoints."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tlt_core.models.schedule import SoftStartAnnealingSchedule, soft_start_annealing_lr

MIN, MAX = 5e-5, 2e-2


def _lr(schedule, step):
    return float(np.asarray(schedule(step)))


def test_breakpoints():
    s = SoftStartAnnealingSchedule(MIN, MAX, 0.15, 0.8, total_steps=1000)
    assert _lr(s, 0) == pytest.approx(MIN, rel=1e-5)
    assert _lr(s, 150) == pytest.approx(MAX, rel=1e-5)
    assert _lr(s, 500) == pytest.approx(MAX, rel=1e-5)
    assert _lr(s, 799) == pytest.approx(MAX, rel=1e-5)
    assert _lr(s, 1000) == pytest.approx(MIN, rel=1e-4)
    assert _lr(s, 5000) == pytest.approx(MIN, rel=1e-4)  # held at min past the end
    # Log-linear: halfway up the ramp is the geometric mean.
    assert _lr(s, 75) == pytest.approx(math.sqrt(MIN * MAX), rel=1e-4)
    assert _lr(s, 900) == pytest.approx(math.sqrt(MIN * MAX), rel=1e-4)


def test_monotone_pieces_and_python_twin():
    s = SoftStartAnnealingSchedule(MIN, MAX, 0.1, 0.7, total_steps=200)
    values = [_lr(s, i) for i in range(201)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values[:21]))
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(values[140:]))
    for i in (0, 7, 19, 20, 100, 139, 140, 171, 200):
        assert values[i] == pytest.approx(
            soft_start_annealing_lr(i / 200, MIN, MAX, 0.1, 0.7), rel=1e-4
        )


def test_scaled_by_workers_and_config():
    s = SoftStartAnnealingSchedule(MIN, MAX, 0.15, 0.8, total_steps=100, scale=4)
    assert _lr(s, 50) == pytest.approx(4 * MAX, rel=1e-5)
    again = SoftStartAnnealingSchedule.from_config(s.get_config())
    assert _lr(again, 10) == pytest.approx(_lr(s, 10))


def test_no_soft_start():
    s = SoftStartAnnealingSchedule(MIN, MAX, 0.0, 0.5, total_steps=10)
    assert _lr(s, 0) == pytest.approx(MAX, rel=1e-5)


def test_rejects_bad_values():
    with pytest.raises(ValueError):
        SoftStartAnnealingSchedule(1e-2, 1e-3, 0.1, 0.5, 10)
    with pytest.raises(ValueError):
        SoftStartAnnealingSchedule(1e-3, 1e-2, 0.6, 0.5, 10)
