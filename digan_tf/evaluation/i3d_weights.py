"""Loads pretrained I3D weights from a local copy of DeepMind's
kinetics-i3d RGB checkpoint or of the TF Hub `i3d-kinetics-400` module.

Both store TF checkpoint variables under their graph names
(`RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w`, ...): the checkpoint as
`model.ckpt.{index,data-*}`, the Hub module (TF1 format) as
`variables/variables.{index,data-*}` inside its directory. One reader serves
both; every expected variable is checked by name and shape before any is
assigned.
"""

import os

import numpy as np
import tensorflow as tf

from digan_tf.models.i3d import CHECKPOINT_SCOPE

_FIRST = "Conv3d_1a_7x7/conv_3d/w"


def checkpoint_prefix(path, argument="i3d_weights"):
    """The checkpoint prefix for `path`: a Hub module directory, a
    directory holding one checkpoint, a prefix (`.../model.ckpt`) or its
    `.index` file."""
    path = os.fspath(path)
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if tf.io.gfile.isdir(path):
        hub_variables = os.path.join(path, "variables", "variables")
        if tf.io.gfile.exists(hub_variables + ".index"):
            return hub_variables
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = tf.io.gfile.glob(os.path.join(path, "*.index"))
        if len(indexes) == 1:
            return indexes[0][: -len(".index")]
        raise FileNotFoundError(
            f"`{argument}`: '{path}' holds no I3D weights: expected a TF Hub module "
            "directory (variables/variables.index) or one checkpoint "
            f"(*.index); found {len(indexes)} .index files.")
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"`{argument}`: no such checkpoint or TF Hub module directory '{path}'.")


def _variable_scope(names, path, argument):
    """The scope the checkpoint stores the I3D under (`RGB/inception_i3d`
    in both DeepMind's checkpoint and the Hub module)."""
    matches = sorted(n[: -len(_FIRST) - 1] for n in names
                     if n.endswith("inception_i3d/" + _FIRST))
    if not matches:
        raise ValueError(
            f"`{argument}`: '{path}' has no I3D variables (expected e.g. "
            f"'{CHECKPOINT_SCOPE}/{_FIRST}').")
    if CHECKPOINT_SCOPE in matches:
        return CHECKPOINT_SCOPE
    if len(matches) > 1:
        raise ValueError(f"`{argument}`: '{path}' holds several I3D networks "
                         f"({', '.join(matches)}); give one.")
    return matches[0]


def load(model, path, argument="i3d_weights"):
    """Assigns the weights at `path` to the `I3D` `model`; returns `model`.

    Raises:
        FileNotFoundError: nothing loadable at `path`.
        ValueError: a variable is missing or has another shape (the message
            names the file, the variable, and both shapes).
    """
    prefix = checkpoint_prefix(path, argument)
    reader = tf.train.load_checkpoint(prefix)
    stored = reader.get_variable_to_shape_map()
    scope = _variable_scope(stored, path, argument)
    variables = model.checkpoint_variables()
    problems = []
    for name, variable in variables.items():
        key = scope + name[len(CHECKPOINT_SCOPE):]
        want = list(variable.shape)
        if key not in stored:
            problems.append(f"missing '{key}' (shape {want})")
        elif list(stored[key]) != want:
            problems.append(f"'{key}' has shape {list(stored[key])}, "
                            f"expected {want}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"`{argument}`: '{prefix}' does not hold the Kinetics "
                         f"RGB I3D: {'; '.join(problems[:3])}{more}.")
    for name, variable in variables.items():
        key = scope + name[len(CHECKPOINT_SCOPE):]
        variable.assign(np.asarray(reader.get_tensor(key), np.float32))
    return model
