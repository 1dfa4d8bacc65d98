"""The one way every composite layer and model here builds its sublayers.

Leaf layers (`EqualizedDense`, `EqualizedConv2D`, `FMMLayer`, `ToRGB`,
`MotionCoordinateEmbedding`, I3D's units) create their own weights in
`build(*input_shapes)`, as Keras expects. A layer made of other layers
knows every sublayer's input shape from its own configuration, so it
creates *and builds* them in its constructor, inside
`building_sublayers(self)`:

- the sublayers' variables are created under the parent's name scope, so
  every variable of a network has a unique path. A SavedModel loaded by a
  TF1 session (TF Serving's classic path) keys variables by path, and
  Keras 3 gives sublayers built lazily at first call only their own names;
- the network has all its weights right after construction: checkpoints,
  `set_weights`, the authors'-weights importer and the EMA copy work on a
  model that has never been called;
- the layer is marked built, so Keras never calls `build()` with shapes
  of a first call that might differ from the configuration.
"""

import contextlib

import keras


@contextlib.contextmanager
def building_sublayers(layer):
    """Creates `layer`'s sublayers under its name scope; marks it built
    when the block completes."""
    with keras.name_scope(layer.name, caller=layer):
        yield
    layer.built = True
