"""The SSD multibox loss: softmax cross-entropy with hard negative mining + smooth L1.

Written with ``keras.ops`` only, so it runs under any Keras backend.

Targets per anchor (what ``tlt_core.networks.ssd.box_coding.encode_batch`` produces):

- ``class_targets`` [B, A]: model class index, 0 = background (a negative), 1..C = an
  object class (a positive), -1 = ignored (matched neither way; contributes nothing).
- ``loc_targets`` [B, A, 4]: encoded offsets; only read where the anchor is positive.

Per image, every positive anchor contributes its cross-entropy; of the negatives only the
hardest ``neg_pos_ratio * n_pos`` contribute (at least ``min_negatives`` when the image has
few or no positives, at most all of them). Localisation is smooth L1 on positives. The sum
over the batch is divided by the number of positives in the batch (at least 1).
"""

from __future__ import annotations

import keras
from keras import ops

IGNORE_CLASS = -1


def smooth_l1(diff):
    """Elementwise Huber with delta 1: 0.5 x^2 where |x| < 1, |x| - 0.5 elsewhere."""
    absolute = ops.abs(diff)
    return ops.where(absolute < 1.0, 0.5 * ops.square(diff), absolute - 0.5)


def ssd_loss_terms(
    class_targets,
    loc_targets,
    conf_logits,
    loc_pred,
    *,
    neg_pos_ratio: float = 3.0,
    min_negatives: int = 4,
):
    """Return per-image ``(conf_loss_sum [B], loc_loss_sum [B], n_positive [B])``."""
    conf_logits = ops.cast(conf_logits, "float32")
    loc_pred = ops.cast(loc_pred, "float32")
    loc_targets = ops.cast(loc_targets, "float32")
    class_targets = ops.cast(class_targets, "int32")

    positive = class_targets > 0
    negative = ops.equal(class_targets, 0)
    positive_f = ops.cast(positive, "float32")
    n_positive = ops.sum(positive_f, axis=1)  # [B]
    n_negative_avail = ops.sum(ops.cast(negative, "float32"), axis=1)

    # Cross-entropy of every anchor against its target (ignored anchors use class 0 here
    # and are masked out below).
    safe_targets = ops.maximum(class_targets, 0)
    log_probs = ops.log_softmax(conf_logits, axis=-1)
    num_classes = ops.shape(conf_logits)[-1]
    one_hot = ops.one_hot(safe_targets, num_classes, dtype="float32")
    cross_entropy = -ops.sum(one_hot * log_probs, axis=-1)  # [B, A]

    positive_ce = ops.sum(cross_entropy * positive_f, axis=1)

    # Hard negative mining: rank negatives by their loss (descending) within each image,
    # keep the first k. Non-negatives get -1 so they rank last (CE is >= 0).
    negative_ce = ops.where(negative, cross_entropy, -1.0)
    order = ops.argsort(-negative_ce, axis=1)
    rank = ops.argsort(order, axis=1)  # rank of each anchor in the descending order
    n_keep = ops.minimum(
        ops.maximum(neg_pos_ratio * n_positive, float(min_negatives)), n_negative_avail
    )
    keep = ops.logical_and(ops.cast(rank, "float32") < ops.expand_dims(n_keep, 1), negative)
    negative_sum = ops.sum(ops.where(keep, cross_entropy, 0.0), axis=1)

    loc_loss = ops.sum(smooth_l1(loc_pred - loc_targets), axis=-1)  # [B, A]
    loc_sum = ops.sum(loc_loss * positive_f, axis=1)
    return positive_ce + negative_sum, loc_sum, n_positive


@keras.saving.register_keras_serializable(package="tlt_core")
class SsdLoss(keras.losses.Loss):
    """Keras loss over the concatenated training output.

    ``y_true`` [B, A, 5]: class index (as a float) then the 4 encoded offsets.
    ``y_pred`` [B, A, C + 1 + 4]: the ``conf`` logits then the ``loc`` offsets (the trainer
    concatenates the two model outputs; the saved model keeps them separate).

    Returns one value per image, scaled so that Keras' mean over the batch equals the batch
    sum divided by the batch's positives (``alpha`` weighs localisation).
    """

    def __init__(
        self,
        neg_pos_ratio: float = 3.0,
        min_negatives: int = 4,
        alpha: float = 1.0,
        name: str = "ssd_loss",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.neg_pos_ratio = neg_pos_ratio
        self.min_negatives = min_negatives
        self.alpha = alpha

    def call(self, y_true, y_pred):
        class_targets = ops.cast(ops.round(y_true[..., 0]), "int32")
        loc_targets = y_true[..., 1:5]
        conf_logits = y_pred[..., :-4]
        loc_pred = y_pred[..., -4:]
        conf_sum, loc_sum, n_positive = ssd_loss_terms(
            class_targets,
            loc_targets,
            conf_logits,
            loc_pred,
            neg_pos_ratio=self.neg_pos_ratio,
            min_negatives=self.min_negatives,
        )
        batch = ops.cast(ops.shape(y_true)[0], "float32")
        total_positive = ops.maximum(ops.sum(n_positive), 1.0)
        return (conf_sum + self.alpha * loc_sum) * batch / total_positive

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            neg_pos_ratio=self.neg_pos_ratio, min_negatives=self.min_negatives, alpha=self.alpha
        )
        return config
