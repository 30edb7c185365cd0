"""The DetectNet_v2 cost: weighted coverage cross-entropy + masked L1 box cost, per class.

Per class ``c`` and image, over the grid cells (``y_true`` from `rasterizer.rasterize`):

- coverage cost: mean over cells of ``mask * w * BCE(cov_pred, cov_true)`` with ``w =
  coverage_foreground_weight`` (0.05 in 002) for a cell in an object's coverage region
  and ``1 - coverage_foreground_weight`` for a background cell, as TLT weighs it (the
  field is "the relative weight of the cells where there is a foreground instance"); a
  dead-zone cell weighs 0. Foreground weighed 1 and background 0.05, as this module did
  first, let the coverage spread over the cells around every object (sample data after 9
  epochs: 4 background cells above coverage 0.3 for each object cell), and their
  untrained boxes became dozens of fragment clusters per image;
- box cost: mean over cells of ``cov_true * sum_k |bbox_pred_k - bbox_true_k|`` (only the
  cells that own an object). TLT weighs each cell by ``cov_norm`` instead, the inverse of
  its object's box area, so that every object weighs the same; tried on the sample data
  (6 epochs from scratch, coverage_foreground_weight 0.05 and 0.5), it lost 0.06 and 0.11
  mAP, most of it on cars (AP 0.64 -> 0.50, 0.69 -> 0.50: the off-centre cells of large
  objects, weighed down, gave imprecise boxes that DBSCAN left as fragment clusters), so
  every covered cell weighs 1.

The loss returns one cost per image (the trainer averages over the batch). The objective weights of a class move linearly from
``initial_weight`` to ``weight_target`` over the training (``progress`` 0 -> 1). With
``enable_autoweighting`` each objective's weight is further divided by a bias-corrected
moving average of its cost, so objectives whose cost is small (the box cost late in
training) are not drowned by the others. The weights of a class are then normalised to
sum to 1 and clipped to ``[min_objective_weight, max_objective_weight]``. The total is
``sum_c class_weight_c * sum_o weight_{c,o} * cost_{c,o}`` with the class weights
normalised to sum to 1.

``keras.ops`` only; the moving averages and the step counter are Keras variables updated
when the cost is called (the training progress is ``step / total_steps``).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tlt_core.networks.detectnet_v2.rasterizer import split_targets

EMA_MOMENTUM = 0.99
COV_EPSILON = 1e-6  # coverage clipped to [eps, 1 - eps] inside the logarithms


def cost_terms(y_true, y_pred, num_classes: int, foreground_weight):
    """Per image and class ``(cov_cost [B, C], bbox_cost [B, C])``.

    ``y_pred`` [B, rows, cols, 5C]: coverage (after the sigmoid) then coded boxes.
    """
    c = num_classes
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    cov_t, bbox_t, mask = split_targets(y_true, c)
    cov_p, bbox_p = y_pred[..., :c], y_pred[..., c : 5 * c]
    fg = ops.convert_to_tensor(np.asarray(foreground_weight, np.float32))
    weight = mask * ops.where(cov_t > 0.5, fg, 1.0 - fg)
    p = ops.clip(cov_p, COV_EPSILON, 1.0 - COV_EPSILON)
    bce = -(cov_t * ops.log(p) + (1.0 - cov_t) * ops.log(1.0 - p))
    cov_cost = ops.mean(weight * bce, axis=(1, 2))  # [B, C]
    shape = ops.shape(bbox_p)
    abs_diff = ops.abs(bbox_p - bbox_t)
    abs_diff = ops.reshape(abs_diff, (shape[0], shape[1], shape[2], c, 4))
    bbox_cost = ops.mean(ops.sum(abs_diff, axis=-1) * cov_t, axis=(1, 2))  # [B, C]
    return cov_cost, bbox_cost


def objective_weights(progress, initial, target, low: float, high: float, ema=None):
    """Weights [C, 2] (cov, bbox) at ``progress`` in [0, 1]; ``ema`` [C, 2] or None."""
    progress = ops.clip(ops.cast(progress, "float32"), 0.0, 1.0)
    initial = ops.convert_to_tensor(np.asarray(initial, np.float32))
    target = ops.convert_to_tensor(np.asarray(target, np.float32))
    weights = initial + (target - initial) * progress
    if ema is not None:
        weights = weights / ops.maximum(ema, 1e-12)
    weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-12)
    return ops.clip(weights, low, high)


class DetectNetCost(keras.losses.Loss):
    """The cost as a Keras loss over ``(y_true, concat([cov, bbox]))``, per image."""

    def __init__(self, cost_spec, num_classes: int, total_steps: int, name="detectnet_v2_cost"):
        super().__init__(name=name)
        self.num_classes = int(num_classes)
        self.total_steps = max(1, int(total_steps))
        classes = cost_spec.classes
        self.class_weights = np.array([k.class_weight for k in classes], np.float32)
        self.class_weights /= self.class_weights.sum()
        self.foreground = np.array([k.coverage_foreground_weight for k in classes], np.float32)
        self.initial = np.array([k.initial_weights for k in classes], np.float32)
        self.target = np.array([k.target_weights for k in classes], np.float32)
        self.autoweighting = bool(cost_spec.enable_autoweighting)
        self.low = float(cost_spec.min_objective_weight)
        self.high = float(cost_spec.max_objective_weight)
        self.step = keras.Variable(0.0, trainable=False, name="cost_step", dtype="float32")
        self.ema = keras.Variable(
            np.zeros((self.num_classes, 2), np.float32), trainable=False, name="cost_ema"
        )

    def set_step(self, step: int) -> None:
        """Where training resumes (the schedule's progress)."""
        self.step.assign(float(step))

    def weights_now(self):
        ema = None
        if self.autoweighting:
            seen = ops.maximum(self.step, 1.0)
            ema = self.ema / (1.0 - ops.power(EMA_MOMENTUM, seen))
        return objective_weights(
            self.step / self.total_steps, self.initial, self.target, self.low, self.high, ema
        )

    def call(self, y_true, y_pred):
        cov_cost, bbox_cost = cost_terms(y_true, y_pred, self.num_classes, self.foreground)
        costs = ops.stack([cov_cost, bbox_cost], axis=-1)  # [B, C, 2]
        if self.autoweighting:
            batch_mean = ops.stop_gradient(ops.mean(costs, axis=0))
            self.ema.assign(EMA_MOMENTUM * self.ema + (1.0 - EMA_MOMENTUM) * batch_mean)
        self.step.assign_add(1.0)
        weights = ops.stop_gradient(self.weights_now())  # [C, 2]
        per_class = ops.sum(weights[None] * costs, axis=-1)  # [B, C]
        return ops.sum(ops.convert_to_tensor(self.class_weights)[None] * per_class, axis=-1)


def evaluation_cost(cost_spec, num_classes: int):
    """``(y_true, y_pred) -> cost per image`` (NumPy) of a trained model: the training cost
    with the objective weights where training ends (``weight_target``). Autoweighting's
    moving averages are training state a model file does not keep, so they are left out;
    the figure is comparable between models and data sets, not with the training loss."""
    classes = cost_spec.classes
    class_weights = np.array([k.class_weight for k in classes], np.float32)
    class_weights /= class_weights.sum()
    foreground = np.array([k.coverage_foreground_weight for k in classes], np.float32)
    weights = objective_weights(
        1.0,
        np.array([k.initial_weights for k in classes], np.float32),
        np.array([k.target_weights for k in classes], np.float32),
        float(cost_spec.min_objective_weight),
        float(cost_spec.max_objective_weight),
    )

    def cost(y_true, y_pred) -> np.ndarray:
        cov_cost, bbox_cost = cost_terms(y_true, y_pred, num_classes, foreground)
        per_class = weights[None, :, 0] * cov_cost + weights[None, :, 1] * bbox_cost
        return np.asarray(ops.convert_to_numpy(ops.sum(class_weights[None] * per_class, -1)))

    return cost
