"""The classification learning-rate schedules of ``lr_config``: step, soft_anneal, cosine.

With ``e = step // steps_per_epoch`` (completed epochs) and ``p = step / total_steps``:

- ``step``: ``learning_rate * gamma ** floor(e / step_size)`` (002, 11.1's schedule);
- ``soft_anneal``: a linear warm-up from 0 to ``learning_rate`` over the first
  ``soft_start`` of training, then ``learning_rate`` divided by ``annealing_divider`` once
  for every annealing point ``p`` has passed;
- ``cosine``: the same warm-up, then a half cosine from ``learning_rate`` down to
  ``learning_rate * min_lr_ratio`` at the end.

The curve is multiplied by ``scale`` (the number of replicas, as for SSD).
"""

from __future__ import annotations

import math

import keras
from keras import ops


def learning_rate_at(schedule, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The unscaled rate at ``step`` (plain Python: tests and logs)."""
    lr = schedule.learning_rate
    if schedule.kind == "step":
        epoch = step // max(steps_per_epoch, 1)
        return lr * schedule.gamma ** (epoch // schedule.step_size)
    progress = step / max(total_steps, 1)
    if schedule.soft_start > 0 and progress < schedule.soft_start:
        return lr * progress / schedule.soft_start
    if schedule.kind == "soft_anneal":
        passed = sum(progress >= p for p in schedule.annealing_points)
        return lr / schedule.annealing_divider**passed
    span = max(1.0 - schedule.soft_start, 1e-12)
    t = min((progress - schedule.soft_start) / span, 1.0)
    low = lr * schedule.min_lr_ratio
    return low + (lr - low) * 0.5 * (1.0 + math.cos(math.pi * t))


@keras.saving.register_keras_serializable(package="tlt_core")
class ClassificationSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate_at` as a Keras schedule (graph ops)."""

    def __init__(
        self,
        kind: str,
        learning_rate: float,
        *,
        steps_per_epoch: int,
        total_steps: int,
        step_size: int = 1,
        gamma: float = 0.1,
        soft_start: float = 0.0,
        annealing_points: tuple[float, ...] | list[float] = (),
        annealing_divider: float = 10.0,
        min_lr_ratio: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        if kind not in ("step", "soft_anneal", "cosine"):
            raise ValueError(f"unknown schedule {kind!r}")
        self.kind = kind
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.total_steps = max(int(total_steps), 1)
        self.step_size = max(int(step_size), 1)
        self.gamma = float(gamma)
        self.soft_start = float(soft_start)
        self.annealing_points = tuple(float(p) for p in annealing_points)
        self.annealing_divider = float(annealing_divider)
        self.min_lr_ratio = float(min_lr_ratio)
        self.scale = float(scale)

    @classmethod
    def from_spec(cls, lr, *, steps_per_epoch: int, total_steps: int, scale: float = 1.0):
        """From a resolved `tlt_core.networks.classification.spec.LrSchedule`."""
        return cls(
            lr.kind,
            lr.learning_rate,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            step_size=lr.step_size or 1,
            gamma=lr.gamma,
            soft_start=lr.soft_start,
            annealing_points=lr.annealing_points,
            annealing_divider=lr.annealing_divider,
            min_lr_ratio=lr.min_lr_ratio,
            scale=scale,
        )

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = self.learning_rate
        if self.kind == "step":
            epoch = ops.floor(step / float(self.steps_per_epoch))
            decays = ops.floor(epoch / float(self.step_size))
            return lr * ops.power(self.gamma, decays) * self.scale
        progress = step / float(self.total_steps)
        warm = lr * progress / max(self.soft_start, 1e-12)
        if self.kind == "soft_anneal":
            passed = ops.zeros_like(progress)
            for point in self.annealing_points:
                passed = passed + ops.cast(progress >= point, "float32")
            after = lr / ops.power(self.annealing_divider, passed)
        else:
            span = max(1.0 - self.soft_start, 1e-12)
            t = ops.minimum((progress - self.soft_start) / span, 1.0)
            low = lr * self.min_lr_ratio
            after = low + (lr - low) * 0.5 * (1.0 + ops.cos(math.pi * t))
        value = ops.where(progress < self.soft_start, warm, after)
        return value * self.scale

    def get_config(self) -> dict:
        return {
            "kind": self.kind,
            "learning_rate": self.learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "step_size": self.step_size,
            "gamma": self.gamma,
            "soft_start": self.soft_start,
            "annealing_points": list(self.annealing_points),
            "annealing_divider": self.annealing_divider,
            "min_lr_ratio": self.min_lr_ratio,
            "scale": self.scale,
        }
