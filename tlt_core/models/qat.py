"""Quantization-aware training (QAT): fake-quantised Keras layers, written in ``keras.ops``.

TensorRT runs a layer in INT8 where its inputs are quantised: the data input and the weights
of convolutions and fully connected layers, and the inputs of element-wise additions. QAT
trains with exactly those roundings in the forward pass so the weights learn to live with
them:

- weights: symmetric, per output channel, scale max|W| / 127 (what TensorRT computes from the
  weights it is given, so nothing needs storing);
- activations: symmetric, per tensor, scale amax / 127, amax an exponential moving average
  of the batches' max |x| (``amax`` variables, non-trainable, saved with the model);
- gradients: straight-through inside [-amax, amax], zero outside (clipped).

``to_qat(model)`` rewrites a float model's functional config: every BatchNormalization read
only from a convolution / Dense output is folded into it first (as TensorRT folds it when it
builds the engine, so the weights QAT rounds are the weights TensorRT rounds), then
``Conv2D``, ``DepthwiseConv2D``, ``Dense`` and ``Add`` become their ``Qat*`` versions with
the same names. ``to_float(model)`` turns a QAT model back into plain layers (for ONNX
export) and ``activation_ranges(model)`` gives each quantised layer's input amax values.
Everything is in ``keras.ops``: the layers run under the TensorFlow and the JAX backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
from keras import ops

EMA_DECAY = 0.99
NUM_LEVELS = 127.0  # symmetric INT8: [-127, 127]
QAT_METADATA_KEY = "qat"  # model metadata: true for a model trained with QAT
_PACKAGE = "tlt_qat"


def fake_quantize(x, amax):
    """Symmetric INT8 round trip of ``x`` with range ``amax`` (a scalar or broadcastable),
    straight-through gradient inside the range."""
    amax = ops.maximum(amax, 1e-8)
    scale = amax / NUM_LEVELS
    clipped = ops.clip(x, -amax, amax)
    rounded = ops.round(clipped / scale) * scale
    return clipped + ops.stop_gradient(rounded - clipped)


def fake_quantize_kernel(kernel, reduce_axes: tuple[int, ...]):
    """Per-output-channel symmetric INT8 round trip of a kernel (max |W| over ``reduce_axes``)."""
    amax = ops.stop_gradient(ops.max(ops.abs(kernel), axis=reduce_axes, keepdims=True))
    return fake_quantize(kernel, amax)


class _InputRanges:
    """The EMA range of each input of a quantised layer (mixed into the Qat* layers): the
    ``ema_decay`` argument, its config entry, and one ``amax`` variable per quantised input
    (one, or one per input where ``_quantizes_every_input``)."""

    _quantizes_every_input = False

    def __init__(self, *args, ema_decay: float = EMA_DECAY, **kwargs):
        super().__init__(*args, **kwargs)
        self.ema_decay = float(ema_decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._add_ranges(len(input_shape) if self._quantizes_every_input else 1)

    def get_config(self):
        return {**super().get_config(), "ema_decay": self.ema_decay}

    def _add_ranges(self, count: int) -> None:
        self.input_amax = [
            self.add_weight(
                name=f"input_amax_{k}" if count > 1 else "input_amax",
                shape=(),
                initializer="zeros",
                trainable=False,
                dtype="float32",
            )
            for k in range(count)
        ]

    def _quantize_input(self, x, index: int, training):
        variable = self.input_amax[index]
        if training:
            batch = ops.stop_gradient(ops.cast(ops.max(ops.abs(x)), "float32"))
            current = ops.convert_to_tensor(variable)
            # The first batch sets the range; later ones move it by (1 - decay).
            updated = ops.where(
                current > 0, self.ema_decay * current + (1.0 - self.ema_decay) * batch, batch
            )
            variable.assign(updated)
            amax = updated
        else:
            amax = ops.convert_to_tensor(variable)
            # A layer that never saw a batch (fresh model, evaluated): no rounding.
            amax = ops.where(amax > 0, amax, ops.stop_gradient(ops.max(ops.abs(x))))
        return fake_quantize(x, ops.cast(amax, x.dtype))


class _SavedRanges:
    """Conv2D and Dense save only kernel and bias (by index); the ranges go after them."""

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.built:
            base = 1 + int(self.use_bias)
            for k, variable in enumerate(self.input_amax):
                store[str(base + k)] = variable

    def load_own_variables(self, store):
        super().load_own_variables(store)
        if self.built:
            base = 1 + int(self.use_bias)
            for k, variable in enumerate(self.input_amax):
                variable.assign(store[str(base + k)])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QatConv2D(_SavedRanges, _InputRanges, keras.layers.Conv2D):
    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, fake_quantize_kernel(kernel, (0, 1, 2)))

    def call(self, inputs, training=None):
        return super().call(self._quantize_input(inputs, 0, training))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QatDepthwiseConv2D(_InputRanges, keras.layers.DepthwiseConv2D):
    def call(self, inputs, training=None):
        x = self._quantize_input(inputs, 0, training)
        kernel = fake_quantize_kernel(self.kernel, (0, 1))  # [kh, kw, C, multiplier]
        outputs = ops.depthwise_conv(
            x,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            shape = (1, 1, 1, -1) if self.data_format == "channels_last" else (1, -1, 1, 1)
            outputs = outputs + ops.reshape(self.bias, shape)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QatDense(_SavedRanges, _InputRanges, keras.layers.Dense):
    def call(self, inputs, training=None):
        x = ops.matmul(
            self._quantize_input(inputs, 0, training), fake_quantize_kernel(self.kernel, (0,))
        )
        if self.use_bias:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QatAdd(_InputRanges, keras.layers.Add):
    _quantizes_every_input = True

    def call(self, inputs, training=None):
        values = [self._quantize_input(x, k, training) for k, x in enumerate(inputs)]
        out = values[0]
        for value in values[1:]:
            out = ops.add(out, value)
        return out


_QAT_OF = {
    "Conv2D": QatConv2D,
    "DepthwiseConv2D": QatDepthwiseConv2D,
    "Dense": QatDense,
    "Add": QatAdd,
}
_FLOAT_OF = {
    cls.__name__: base
    for base, cls in (
        (keras.layers.Conv2D, QatConv2D),
        (keras.layers.DepthwiseConv2D, QatDepthwiseConv2D),
        (keras.layers.Dense, QatDense),
        (keras.layers.Add, QatAdd),
    )
}
QAT_LAYERS = tuple(_QAT_OF.values())


def qat_optimizer(optimizer, rate_factor: float = 1.0):
    """The optimizer QAT trains with: Adam on ``optimizer``'s learning-rate schedule,
    multiplied by ``rate_factor`` (``QAT_RATE_FACTOR``).

    Folding BN changes each layer's scale: a channel whose BN divided by a large standard
    deviation (early layers read pixels, +-128) gets a small fold factor f, and plain SGD on
    the folded weights moves the original ones by lr/f^2. Measured on the sample SSD
    (scripts/int8_accuracy.py's model, fake quantisation off): SGD with momentum at 1e-4 took
    the folded float model's loss from 0.95 to 9.8 in 6 steps; Adam, whose step does not
    depend on the gradient's scale, kept it near 1.0 at the same rate.
    """
    schedule = getattr(optimizer, "_learning_rate", None)
    if schedule is None:
        schedule = float(np.asarray(optimizer.learning_rate))
    if rate_factor != 1.0:
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = ScaledSchedule(schedule, rate_factor)
        else:
            schedule = float(schedule) * rate_factor
    return keras.optimizers.Adam(learning_rate=schedule)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``schedule`` times ``factor``: the float run's curve, at QAT's rate."""

    def __init__(self, schedule, factor: float) -> None:
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self) -> dict:
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "factor": self.factor,
        }

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["factor"])


# QAT's learning rate, as a fraction of the spec's schedule, from a trained float or pruned
# model (``-m``) and in the QAT part of a from-scratch run alike: the experiment spec the
# float model was trained with (000's flow: retrain with ``enable_qat: true``) trains QAT as
# it is. Adam's step does not scale with the gradient, so SGD-sized rates do not carry over:
# measured on the sample SSD trained 20 epochs (scripts/int8_accuracy.py, float 95.00; SGD
# peak 2e-2), 2 QAT epochs at an Adam peak of 2e-2 (factor 1): mAP 0.00; 1e-4: Q/DQ 93.37;
# 2e-5: 94.57; 1e-5 (this factor): 95.13; 5e-6: 95.17.
QAT_RATE_FACTOR = 5e-4
# QAT from scratch (no start model): tf.contrib.quantize's ``quant_delay``. BN folded from
# the first step diverged from random weights (sample SSD: SGD loss NaN by epoch 2, Adam at
# the spec's rate 1e5), so the run trains float, BN live, for this fraction of its epochs
# (at least 1) on the whole run's schedule (so mostly annealed by the switch), then folds BN,
# quantises and fine-tunes the rest (at least 1) as QAT at ``QAT_RATE_FACTOR`` of the
# schedule, run anew over those epochs. Measured (sample SSD, 20 epochs, data as above, QAT
# Q/DQ mAP against float 95.00): switching after 9/10 of the epochs 95.02; after 2/3 88.62
# (92.37 with the QAT part at 1 % of the schedule, where it is still learning when it ends).
SCRATCH_FLOAT_FRACTION = 0.9
SWITCH_METADATA_KEY = "qat_switch_epoch"  # model metadata of a from-scratch QAT run


def scratch_switch_epoch(num_epochs: int) -> int:
    """The epochs (1-based count) a from-scratch QAT run trains float before it switches."""
    return min(max(round(num_epochs * SCRATCH_FLOAT_FRACTION), 1), num_epochs - 1)


def is_qat_model(model) -> bool:
    return any(isinstance(layer, QAT_LAYERS) for layer in model.layers)


# --------------------------------------------------------------------------- config rewrite


def _refs(obj: Any) -> Iterator[dict]:
    """The ``__keras_tensor__`` dicts nested in a layer's inbound nodes."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            yield obj
            return
        for value in obj.values():
            yield from _refs(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _refs(value)


def _rename_refs(obj: Any, old: str, new: str) -> None:
    for ref in _refs(obj):
        history = ref["config"]["keras_history"]
        if history[0] == old:
            history[0] = new


def _rename_outputs(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, list) and len(obj) == 3 and obj[0] == old and isinstance(obj[1], int):
        return [new, obj[1], obj[2]]
    if isinstance(obj, list):
        return [_rename_outputs(v, old, new) for v in obj]
    if isinstance(obj, dict):
        return {k: _rename_outputs(v, old, new) for k, v in obj.items()}
    return obj


_FOLDABLE = ("Conv2D", "DepthwiseConv2D", "Dense", "QatConv2D", "QatDepthwiseConv2D", "QatDense")


def _foldable_pairs(config: dict) -> dict[str, str]:
    """BatchNormalization name -> the conv/dense it folds into (its only reader)."""
    layers = config["layers"]
    by_name = {conf["name"]: conf for conf in layers}
    readers: dict[str, int] = {}
    for conf in layers:
        for ref in _refs(conf.get("inbound_nodes", [])):
            readers[ref["config"]["keras_history"][0]] = (
                readers.get(ref["config"]["keras_history"][0], 0) + 1
            )
    outputs = {ref[0] for ref in _output_names(config.get("output_layers"))}
    pairs = {}
    for conf in layers:
        if conf["class_name"] != "BatchNormalization" or len(conf.get("inbound_nodes", [])) != 1:
            continue
        sources = [ref["config"]["keras_history"][0] for ref in _refs(conf["inbound_nodes"])]
        if len(sources) != 1:
            continue
        source = by_name.get(sources[0])
        if (
            source is not None
            and source["class_name"] in _FOLDABLE
            and readers.get(source["name"]) == 1
            and source["name"] not in outputs
            and source["config"].get("activation") in (None, "linear")
            and conf["config"].get("axis") in (-1, [-1], 3, [3])
        ):
            pairs[conf["name"]] = source["name"]
    return pairs


def _output_names(obj: Any) -> Iterator[list]:
    if isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], str):
        yield obj
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _output_names(value)
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _output_names(value)


def _set_class(conf: dict, cls) -> None:
    conf["class_name"] = cls.__name__
    if cls.__module__.startswith("keras"):
        conf["module"] = "keras.layers"
        conf["registered_name"] = None
        conf["config"].pop("ema_decay", None)
    else:
        conf["module"] = None
        conf["registered_name"] = f"{_PACKAGE}>{cls.__name__}"


def _fold_weights(
    layer_weights: dict[str, np.ndarray], bn: dict[str, np.ndarray], eps: float, kind: str
) -> dict[str, np.ndarray]:
    kernel = layer_weights["kernel"]
    channels = bn["moving_mean"].shape[0]
    gamma = bn.get("gamma", np.ones(channels, np.float32))
    beta = bn.get("beta", np.zeros(channels, np.float32))
    factor = gamma / np.sqrt(bn["moving_variance"] + eps)
    if "Depthwise" in kind:  # [kh, kw, C, multiplier], output channel c * m + j
        kernel = kernel * factor.reshape(kernel.shape[2], kernel.shape[3])
    else:  # output channels last
        kernel = kernel * factor
    bias = layer_weights.get("bias", np.zeros(channels, np.float32))
    return {
        "kernel": kernel.astype(np.float32),
        "bias": ((bias - bn["moving_mean"]) * factor + beta).astype(np.float32),
    }


def _layer_weights(layer) -> dict[str, np.ndarray]:
    return {v.name.split("/")[-1]: np.asarray(v.numpy()) for v in layer.weights}


def _rewrite(model, *, to_qat: bool):
    """The model rebuilt with BN folded and quantised layers swapped in (or out)."""
    config = model.get_config()
    layers = config["layers"]
    pairs = _foldable_pairs(config)
    folded_into = {conv: bn for bn, conv in pairs.items()}
    kept = []
    for conf in layers:
        conf.pop("build_config", None)
        if conf["name"] in pairs:
            continue
        if conf["name"] in folded_into:
            conf["config"]["use_bias"] = True
        swap = _QAT_OF if to_qat else _FLOAT_OF
        cls = swap.get(conf["class_name"])
        if cls is not None:
            _set_class(conf, cls)
        kept.append(conf)
    for bn, conv in pairs.items():
        for conf in kept:
            _rename_refs(conf.get("inbound_nodes", []), bn, conv)
        config["output_layers"] = _rename_outputs(config["output_layers"], bn, conv)
    config["layers"] = kept
    new_model = keras.Model.from_config(config)
    for layer in model.layers:
        if layer.name in pairs or not layer.weights:
            continue
        weights = _layer_weights(layer)
        if layer.name in folded_into:
            bn_layer = model.get_layer(folded_into[layer.name])
            weights.update(
                _fold_weights(
                    weights, _layer_weights(bn_layer), float(bn_layer.epsilon), type(layer).__name__
                )
            )
        target = new_model.get_layer(layer.name)
        values = []
        for variable in target.weights:
            short = variable.name.split("/")[-1]
            values.append(weights[short] if short in weights else np.asarray(variable.numpy()))
        target.set_weights(values)
    return new_model


def to_qat(model):
    """``model`` (float, possibly pruned, possibly already QAT) with BN folded and the
    TensorRT-quantised layers fake-quantised; weights and existing ranges kept."""
    return _rewrite(model, to_qat=True)


def to_float(model):
    """A QAT model as plain Keras layers (folded weights, no rounding): what is exported."""
    return _rewrite(model, to_qat=False)


def activation_ranges(model) -> dict[str, list[float]]:
    """Each quantised layer's input amax values (one per input), by layer name."""
    return {
        layer.name: [float(np.asarray(v.numpy())) for v in layer.input_amax]
        for layer in model.layers
        if isinstance(layer, QAT_LAYERS)
    }
