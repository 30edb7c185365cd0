"""TLT's soft-start annealing learning-rate schedule.

With progress ``p = step / total_steps``:

- ``p < soft_start``: log-linear ramp from ``min_lr`` up to ``max_lr``,
  ``lr = max_lr * (min_lr / max_lr) ** (1 - p / soft_start)``;
- ``soft_start <= p < annealing``: ``max_lr``;
- ``p >= annealing``: log-linear decay back to ``min_lr`` at the end,
  ``lr = max_lr * (min_lr / max_lr) ** ((p - annealing) / (1 - annealing))``.

The whole curve is multiplied by ``scale`` (the number of GPUs/workers: TLT's effective
learning rate is ``learning_rate * n_gpu``).
"""

from __future__ import annotations

import math

import keras
from keras import ops


def soft_start_annealing_lr(
    progress: float, min_lr: float, max_lr: float, soft_start: float, annealing: float
) -> float:
    """The unscaled learning rate at ``progress`` in [0, 1] (plain Python, for tests/logs)."""
    ratio = math.log(min_lr / max_lr)
    if soft_start > 0 and progress < soft_start:
        return max_lr * math.exp(ratio * (1.0 - progress / soft_start))
    if progress < annealing:
        return max_lr
    span = max(1.0 - annealing, 1e-12)
    return max_lr * math.exp(ratio * min((progress - annealing) / span, 1.0))


@keras.saving.register_keras_serializable(package="tlt_core")
class SoftStartAnnealingSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(
        self,
        min_lr: float,
        max_lr: float,
        soft_start: float,
        annealing: float,
        total_steps: int,
        scale: float = 1.0,
    ) -> None:
        if not 0 < min_lr <= max_lr:
            raise ValueError(f"need 0 < min_lr <= max_lr, got {min_lr}, {max_lr}")
        if not 0 <= soft_start <= annealing <= 1:
            raise ValueError(
                f"need 0 <= soft_start <= annealing <= 1, got {soft_start}, {annealing}"
            )
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.soft_start = float(soft_start)
        self.annealing = float(annealing)
        self.total_steps = max(int(total_steps), 1)
        self.scale = float(scale)

    def __call__(self, step):
        progress = ops.cast(step, "float32") / float(self.total_steps)
        ratio = math.log(self.min_lr / self.max_lr)
        soft = max(self.soft_start, 1e-12)
        ramp = self.max_lr * ops.exp(ratio * (1.0 - progress / soft))
        span = max(1.0 - self.annealing, 1e-12)
        decay_exponent = ops.minimum((progress - self.annealing) / span, 1.0)
        decay = self.max_lr * ops.exp(ratio * decay_exponent)
        lr = ops.where(
            progress < self.soft_start,
            ramp,
            ops.where(progress < self.annealing, self.max_lr, decay),
        )
        return lr * self.scale

    def get_config(self) -> dict:
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "soft_start": self.soft_start,
            "annealing": self.annealing,
            "total_steps": self.total_steps,
            "scale": self.scale,
        }
