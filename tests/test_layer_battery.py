"""One battery for every layer and model, in the keras-hub manner: config
round trip, a rebuilt copy computing the same outputs, symbolic calls,
`compute_output_shape`, mixed-precision dtype policies and `.keras`
save/load.

`DIGAN` is left out: it is a training container whose `call` is not a
forward pass; its parts are here and its checkpoint and resume are tested
in test_training.py and test_train_cli.py.
"""

import keras
import numpy as np
import pytest

import digan_tf
from digan_tf.layers.discriminator_block import DiscriminatorBlock
from digan_tf.layers.discriminator_epilogue import DiscriminatorEpilogue
from digan_tf.layers.equalized_conv2d import EqualizedConv2D
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.fmm_layer import FMMLayer
from digan_tf.layers.mapping_network import MappingNetwork
from digan_tf.layers.motion_coordinate_embedding import MotionCoordinateEmbedding
from digan_tf.layers.synthesis_block import SynthesisBlock
from digan_tf.layers.to_rgb import ToRGB
from digan_tf.models.i3d import I3D
from tests import testing


def _normal(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(
        np.float32)


def _cases():
    """(id, constructor taking **kwargs such as dtype, inputs, marks)."""
    labels4 = np.array([0, 1, 2, 0], np.int64)
    generator = dict(testing.TINY_GENERATOR, num_classes=2)
    return [
        ("EqualizedDense",
         lambda **k: EqualizedDense(4, lr_multiplier=0.5,
                                    activation="lrelu", **k),
         (_normal(0, 2, 5),)),
        ("EqualizedConv2D",
         lambda **k: EqualizedConv2D(4, 3, down=2, gain=0.5, clamp=2.0, **k),
         (_normal(1, 2, 8, 8, 3),)),
        ("FMMLayer", lambda **k: FMMLayer(4, rank=2, in_channels=5, w_dim=6, **k),
         (_normal(2, 2, 4, 4, 3, 5), _normal(3, 2, 6))),
        ("ToRGB", lambda **k: ToRGB(channels=3, in_channels=5, w_dim=6, **k),
         (_normal(4, 2, 4, 4, 3, 5), _normal(5, 2, 6))),
        ("MotionCoordinateEmbedding",
         lambda **k: MotionCoordinateEmbedding(8, num_frequencies=4,
                                               motion_sigma=0.5, w_dim=6,
                                               motion_dim=5, **k),
         (_normal(6, 2, 6), _normal(7, 2, 5), np.abs(_normal(8, 2, 3)))),
        ("MappingNetwork",
         lambda **k: MappingNetwork(z_dim=4, w_dim=8, num_layers=3,
                                    num_classes=3, w_avg_beta=None, **k),
         (_normal(9, 4, 4), labels4)),
        ("SynthesisBlock",
         lambda **k: SynthesisBlock(16, 8, in_channels=8, input_resolution=8,
                                    num_extra_layers=1, num_frequencies=4,
                                    w_dim=8, motion_dim=8, **k),
         (_normal(10, 2, 8, 8, 3, 8), _normal(11, 2, 8, 8, 3, 3),
          _normal(12, 2, 8), _normal(13, 2, 8), np.abs(_normal(14, 2, 3)))),
        ("DiscriminatorBlock",
         lambda **k: DiscriminatorBlock(8, 16, from_rgb=True, in_channels=7,
                                        conv_clamp=4.0, **k),
         (_normal(15, 2, 8, 8, 7),)),
        ("DiscriminatorEpilogue",
         lambda **k: DiscriminatorEpilogue(8, output_dim=3,
                                           mbstd_group_size=2, **k),
         (_normal(16, 4, 4, 4, 8),)),
        ("Generator", lambda **k: digan_tf.Generator(**generator, **k),
         (_normal(17, 2, 16), _normal(18, 2, 16),
          np.array([[0.0, 0.7], [0.2, 1.3]], np.float32),
          np.array([1, 0], np.int64))),
        ("ImageDiscriminator",
         lambda **k: digan_tf.ImageDiscriminator(
             **testing.TINY_DISCRIMINATOR, **k),
         (_normal(19, 4, 32, 32, 3),)),
        ("MotionDiscriminator",
         lambda **k: digan_tf.MotionDiscriminator(
             num_classes=3, **testing.TINY_DISCRIMINATOR, **k),
         (_normal(20, 4, 32, 32, 7), labels4)),
        pytest.param(
            "I3D", lambda **k: I3D(**k),
            (np.clip(_normal(21, 1, 9, 224, 224, 3), -1, 1),),
            id="I3D", marks=pytest.mark.slow),
    ]


parametrize = pytest.mark.parametrize(
    "name, make, inputs",
    [case if hasattr(case, "values") else pytest.param(*case, id=case[0])
     for case in _cases()])


def _flat(outputs):
    return [np.asarray(o) for o in keras.tree.flatten(outputs)]


def _built(make, inputs, **kwargs):
    keras.utils.set_random_seed(0)
    layer = make(**kwargs)
    outputs = layer(*inputs)
    return layer, outputs


@parametrize
def test_config_round_trip(name, make, inputs):
    testing.assert_config_round_trip(make())


@parametrize
def test_a_copy_from_config_computes_the_same(name, make, inputs):
    layer, outputs = _built(make, inputs)
    copy = layer.__class__.from_config(layer.get_config())
    copy(*inputs)  # leaf layers build on first call
    assert [w.shape for w in copy.weights] == [w.shape for w in layer.weights]
    copy.set_weights(layer.get_weights())
    for a, b in zip(_flat(outputs), _flat(copy(*inputs))):
        np.testing.assert_array_equal(a, b)


@parametrize
def test_symbolic_call_and_output_shape_match_the_eager_call(name, make,
                                                             inputs):
    layer, outputs = _built(make, inputs)
    eager_shapes = [o.shape for o in _flat(outputs)]
    symbolic = layer(*[keras.KerasTensor((None, *np.shape(x)[1:]),
                                         dtype=np.asarray(x).dtype.name)
                       for x in inputs])
    got = [tuple(s.shape) for s in keras.tree.flatten(symbolic)]
    assert got == [(None, *shape[1:]) for shape in eager_shapes]
    declared = layer.compute_output_shape(*[np.shape(x) for x in inputs])
    if isinstance(declared[0], (tuple, list)):
        declared = list(declared)
    else:
        declared = [declared]
    assert [tuple(s) for s in declared] == eager_shapes


@parametrize
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_float32_variables(name, make, inputs, policy):
    if name == "I3D":
        pytest.skip("I3D runs in float32 only (FVD features must match the "
                    "reference network), and half-precision 3-D "
                    "convolutions take minutes on CPUs.")
    layer, outputs = _built(make, inputs, dtype=policy)
    compute = policy.split("_")[1]
    assert layer.weights and all(
        w.dtype == "float32" for w in layer.weights), name
    for output in keras.tree.flatten(outputs):
        # Networks hand float32 to losses and to the uint8 conversion.
        assert output.dtype == (
            "float32" if isinstance(layer, keras.Model) else compute)
    # Same weights in float32 give the same outputs within the half type's
    # precision: a layer that mixed its dtypes up would be far off.
    reference, full = _built(make, inputs)
    reference.set_weights(layer.get_weights())
    for half, single in zip(_flat(outputs), _flat(full)):
        scale = np.abs(single).max() + 1e-6
        error = np.abs(half.astype(np.float32) - single).max() / scale
        assert error < (2e-2 if compute == "float16" else 1e-1), (name, error)


@parametrize
def test_keras_file_round_trip(name, make, inputs, tmp_path):
    layer, outputs = _built(make, inputs)
    if isinstance(layer, keras.Model):
        model = layer
    else:  # a layer travels inside a functional model
        symbolic = [keras.Input(np.shape(x)[1:], dtype=np.asarray(x).dtype.name)
                    for x in inputs]
        model = keras.Model(symbolic, layer(*symbolic))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    again = (loaded(*inputs) if isinstance(layer, keras.Model)
             else loaded(list(inputs)))
    for a, b in zip(_flat(outputs), _flat(again)):
        np.testing.assert_array_equal(a, b)
