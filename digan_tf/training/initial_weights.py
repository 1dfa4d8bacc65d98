"""`bin/train --init_from`: a new run that starts from trained networks
(the authors' snapshot, or the .keras files `bin/import_official` and
`bin/export` write) instead of random weights, to fine-tune them on other
videos. The networks keep their architecture; the run's data must fit it.
"""

import os

import keras

from digan_tf import authors_snapshot
from digan_tf.models.generator import Generator
from digan_tf.models.image_discriminator import ImageDiscriminator
from digan_tf.models.motion_discriminator import MotionDiscriminator

PARTS = ("generator", "ema_generator", "image_discriminator",
         "motion_discriminator")


def _keras_file(path, expected_class):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"`init_from`: no '{path}' (a .keras generator needs its "
            "discriminators beside it, as bin/import_official writes them).")
    model = keras.models.load_model(path, safe_mode=True)
    if not isinstance(model, expected_class):
        raise ValueError(f"`init_from`: '{path}' holds a "
                         f"{type(model).__name__}, expected a "
                         f"{expected_class.__name__}.")
    return model


def load_networks(path):
    """{part: model} for `PARTS` from an authors' snapshot (.pkl: G, G_ema
    and D) or a generator .keras file with its two discriminators beside
    it (the generator then starts both G and its EMA)."""
    path = os.fspath(path)
    if path.endswith(".pkl"):
        return authors_snapshot.load_training_networks(path)
    if not path.endswith(".keras"):
        raise ValueError(f"`init_from` must be a .pkl snapshot or a .keras "
                         f"generator; got '{path}'.")
    stem = path[: -len(".keras")]
    generator = _keras_file(path, Generator)
    return {
        "generator": generator,
        "ema_generator": generator,
        "image_discriminator": _keras_file(
            f"{stem}.image_discriminator.keras", ImageDiscriminator),
        "motion_discriminator": _keras_file(
            f"{stem}.motion_discriminator.keras", MotionDiscriminator),
    }


def rebuilt(model, name, **overrides):
    """A copy of `model` under the current dtype policy (and `overrides`
    of its config), with its weights."""
    config = {k: v for k, v in model.get_config().items() if k != "dtype"}
    copy = type(model).from_config({**config, **overrides, "name": name})
    copy.set_weights(model.get_weights())
    return copy


def check_fits(networks, path, resolution, num_classes):
    """Raises a ValueError naming the flags that do not fit the networks."""
    generator = networks["generator"]
    problems = []
    if generator.resolution != resolution:
        problems.append(f"its resolution is {generator.resolution}, "
                        f"`resolution`={resolution}")
    if generator.num_classes != num_classes:
        problems.append(f"it has {generator.num_classes} classes, the run "
                        f"{num_classes} (`conditional` and the data's "
                        "labels)")
    if problems:
        raise ValueError(f"`init_from` '{path}' does not fit this run: "
                         f"{'; '.join(problems)}.")
