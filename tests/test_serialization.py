"""`.keras` files and configs round-trip, across processes."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import digan_tf
from tests import testing

_LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import digan_tf  # registers the classes
    import keras

    model = keras.models.load_model(sys.argv[1], safe_mode=True)
    inputs = np.load(sys.argv[2])
    args = [inputs[f"arg{i}"] for i in range(len(inputs.files))]
    np.save(sys.argv[3], model(*args).numpy())
    print(type(model).__name__)
    """
)


def _models():
    generator = digan_tf.Generator(num_classes=2, **testing.TINY_GENERATOR)
    z, z_motion = testing.latents(2, generator)
    t = np.array([[0.0, 0.7], [0.2, 1.3]], np.float32)
    labels = np.array([1, 0], np.int64)
    images = np.random.default_rng(3).standard_normal((4, 32, 32, 7))
    images = images.astype(np.float32)
    return [
        ("Generator", generator, (z, z_motion, t, labels)),
        ("ImageDiscriminator",
         digan_tf.ImageDiscriminator(**testing.TINY_DISCRIMINATOR),
         (images[..., :3],)),
        ("MotionDiscriminator",
         digan_tf.MotionDiscriminator(num_classes=3,
                                      **testing.TINY_DISCRIMINATOR),
         (images, np.array([0, 1, 2, 0], np.int64))),
    ]


@pytest.mark.parametrize("name, model, args", _models(),
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.slow
def test_keras_file_loads_in_a_fresh_process(tmp_path, name, model, args):
    path = tmp_path / "model.keras"
    model.save(path)
    np.savez(tmp_path / "inputs.npz",
             **{f"arg{i}": a for i, a in enumerate(args)})
    result = subprocess.run(
        [sys.executable, "-c", _LOADER, str(path),
         str(tmp_path / "inputs.npz"), str(tmp_path / "out.npy")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == name
    expected = model(*args).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


@pytest.mark.parametrize("name, model, args", _models(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_model_config_round_trip(name, model, args):
    testing.assert_config_round_trip(model)
