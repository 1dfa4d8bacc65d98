"""`bin/export`: a generator as a versioned SavedModel for TF Serving
(`EXPORT_DIR/NAME/VERSION/`) and as `EXPORT_DIR/NAME.keras`.

A version is written to a hidden temporary directory beside the others
(TF Serving only loads integer names) and renamed when complete, so a
server polling the base path never sees half an export, and an existing
version is never overwritten."""

import dataclasses
import json
import os
import re
import shutil
import uuid

import tensorflow as tf

from digan_tf.layers.coordinate_view import TRAINED
from digan_tf.serving import signatures
from digan_tf.serving import tf_serving_kit
from digan_tf.utils import atomic_files

# Written into each version (TF Serving ignores assets.extra/ except for
# warm-up files), read by `bin/generate --model=SAVED_MODEL`.
CARD_PATH = os.path.join("assets.extra", "digan_config.json")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class ExportedPaths:
    saved_model: str
    keras_file: str


def model_card(generator, class_names=(), limits=None, view=TRAINED,
               **extra):
    """What a user of an export needs to know about it (JSON-able);
    `resolution` is that of the rendered frames under `view`."""
    card = {
        "resolution": view.output_size(generator.resolution),
        "trained_resolution": generator.resolution,
        "resolution_scale": view.resolution_scale,
        "field_of_view": view.field_of_view,
        "clip_length": generator.clip_length,
        "time_step": generator.time_step,
        "num_classes": generator.num_classes,
        "class_names": list(class_names),
        "z_dim": generator.z_dim,
        "w_dim": generator.w_dim,
        "motion_dim": generator.motion_dim,
    }
    if limits is not None:
        card["limits"] = dataclasses.asdict(limits)
    card.update(extra)
    return card


def versions(base):
    """Integer version directories under a TF Serving base path, sorted."""
    if not os.path.isdir(base):
        return []
    return sorted(int(n) for n in os.listdir(base)
                  if n.isdigit() and os.path.isdir(os.path.join(base, n)))


def export_generator(generator, export_dir, name, version=None,
                     class_names=(), limits=signatures.ServingLimits(),
                     jit_compile=False, source="", view=TRAINED):
    """Writes `export_dir/name/<version>/` and `export_dir/name.keras`.

    Args:
        version: int >= 1; default the next free version (1 for a new name).
        class_names: names of the labels of a conditional generator.
        source: where the weights come from (recorded in the model card).
        view: the `CoordinateView` the signatures render (scaled or
            widened frames); the .keras file is the generator itself.

    Returns:
        `ExportedPaths`.

    Raises:
        ValueError: a bad name or version.
        FileExistsError: the version exists.
    """
    if not _NAME.match(name or ""):
        raise ValueError(f"`name` must be letters, digits, '_', '-' or '.', "
                         f"starting with a letter or digit; got {name!r}.")
    base = os.path.join(export_dir, name)
    if version is None:
        version = (versions(base) or [0])[-1] + 1
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be an integer >= 1; got {version}.")
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise FileExistsError(
            f"`version`={version}: '{final}' exists; versions are never "
            "overwritten (leave `version` out for the next free one).")
    os.makedirs(base, exist_ok=True)
    temporary = os.path.join(base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    computation = signatures.GeneratorSignatures(generator, limits,
                                                 jit_compile, view)
    card = model_card(generator, class_names, limits, view,
                      jit_compile=jit_compile, source=source,
                      signatures=sorted(computation.signatures()))
    try:
        tf.saved_model.save(computation, temporary,
                            signatures=computation.signatures())
        tf_serving_kit.write_warmup(
            temporary, name, tf_serving_kit.warmup_requests(
                generator, min(limits.frames_per_chunk, limits.max_frames)))
        with open(os.path.join(temporary, CARD_PATH), "w") as f:
            json.dump(card, f, indent=1)
        try:
            os.rename(temporary, final)
        except OSError as error:
            raise FileExistsError(
                f"'{final}' appeared while exporting (another export?); "
                "nothing was overwritten.") from error
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)
    tf_serving_kit.write_server_files(base, name, versions(base), limits)
    keras_file = os.path.join(export_dir, f"{name}.keras")
    atomic_files.save_model(generator, keras_file)
    return ExportedPaths(final, keras_file)
