"""Weights of the authors' PyTorch DIGAN networks <-> our Keras models.

The authors' checkpoints are pickles of PyTorch modules:
`authors_snapshot` reads them (configuration and tensors) without PyTorch.
An `.npz` of their state dicts with `G.` and `D.` prefixes also works:
`load(path)` infers the configuration from the tensor names and shapes.
Both end in `build_models`. `save` writes our models in the authors'
layout, so that weights travel both ways.

PyTorch layouts: dense [out, in], conv [out, in, kh, kw]; ours: dense
[in, out], conv [kh, kw, in, out]. The discriminators' 4x4 dense layer reads
channel-major features in PyTorch (index c * 16 + h * 4 + w) and NHWC
features here (design.md section 7).
"""

import math
import os

import numpy as np

from digan_tf.models.generator import Generator
from digan_tf.models.image_discriminator import ImageDiscriminator
from digan_tf.models.motion_discriminator import MotionDiscriminator
from digan_tf.utils import atomic_files

_RESAMPLE_FILTER = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


def _dense_from_4x4_to_ours(array):
    out, features = array.shape
    channels = features // 16
    return (array.reshape(out, channels, 4, 4).transpose(2, 3, 1, 0)
            .reshape(features, out))


def _dense_from_4x4_to_torch(array):
    features, out = array.shape
    channels = features // 16
    return (array.reshape(4, 4, channels, out).transpose(3, 2, 0, 1)
            .reshape(out, features))


# layout: (PyTorch -> ours, ours -> PyTorch)
_LAYOUTS = {
    "vector": (np.asarray, np.asarray),
    "dense": (np.transpose, np.transpose),
    "conv": (lambda a: a.transpose(2, 3, 1, 0),
             lambda a: a.transpose(3, 2, 0, 1)),
    # 1x1 conv weights of the generator: [out, in, 1, 1] <-> [in, out].
    "dense_1x1": (lambda a: a[:, :, 0, 0].T, lambda a: a.T[:, :, None, None]),
    "dense_from_4x4": (_dense_from_4x4_to_ours, _dense_from_4x4_to_torch),
}


def _dense(prefix, layer, layout="dense"):
    yield f"{prefix}.weight", layer.kernel, layout
    if layer.bias is not None:
        yield f"{prefix}.bias", layer.bias, "vector"


def _mapping(prefix, mapping):
    if mapping.w_avg is not None:
        yield f"{prefix}.w_avg", mapping.w_avg, "vector"
    if mapping.embed is not None:
        yield from _dense(f"{prefix}.embed", mapping.embed)
    for index, layer in enumerate(mapping.dense_layers):
        yield from _dense(f"{prefix}.fc{index}", layer)


def _modulated(prefix, layer):
    yield f"{prefix}.weight", layer.kernel, "dense_1x1"
    yield f"{prefix}.bias", layer.bias, "vector"
    yield from _dense(f"{prefix}.affine", layer.affine)


def _generator_tensors(generator):
    yield from _mapping("G.mapping", generator.mapping)
    for block in generator.synthesis_blocks:
        prefix = f"G.synthesis.b{block.resolution}"
        if block.embedding is not None:
            fuser = (
                f"{prefix}.input.input.coord_fuser" if not block.in_channels
                else f"{prefix}.coord_fuser"
            )
            embedding = block.embedding
            yield from _dense(f"{fuser}.xyaffine", embedding.xy_affine)
            yield from _dense(f"{fuser}.affine", embedding.motion_affine)
            yield from _dense(f"{fuser}.motion_mlp.0", embedding.motion_mlp_0)
            yield from _dense(f"{fuser}.motion_mlp.1", embedding.motion_mlp_1)
        names = ["conv0", "conv1"] if block.in_channels else ["conv1"]
        names += [f"extra_convs.{i}" for i in range(block.num_extra_layers)]
        for name, layer in zip(names, block.fmm_layers):
            yield from _modulated(f"{prefix}.{name}", layer)
        yield from _modulated(f"{prefix}.torgb", block.to_rgb)


def _discriminator_tensors(prefix, discriminator):
    for block in discriminator.blocks:
        block_prefix = f"{prefix}.b{block.name[1:]}"
        layers = [("fromrgb", block.fromrgb)] if block.fromrgb else []
        layers += [("conv0", block.conv0), ("conv1", block.conv1),
                   ("skip", block.skip)]
        for name, layer in layers:
            yield from _dense(f"{block_prefix}.{name}", layer, layout="conv")
    epilogue = discriminator.epilogue
    yield from _dense(f"{prefix}.b4.conv", epilogue.conv, layout="conv")
    yield from _dense(f"{prefix}.b4.fc", epilogue.fc, layout="dense_from_4x4")
    yield from _dense(f"{prefix}.b4.out", epilogue.out)
    if discriminator.mapping is not None:
        yield from _mapping(f"{prefix}.mapping", discriminator.mapping)


def named_variables(generator, image_discriminator, motion_discriminator):
    """Yields `(name, variable, layout)` for every tensor of the authors'
    state dicts: `name` as in their files (`G.mapping.fc0.weight`,
    `D.videoD.b4.out.bias`, ...), our variable, and the layout that
    `from_torch_layout` / `to_torch_layout` convert."""
    yield from _generator_tensors(generator)
    yield from _discriminator_tensors("D.imageD", image_discriminator)
    yield from _discriminator_tensors("D.videoD", motion_discriminator)


def from_torch_layout(array, layout):
    """An array of the authors' files (weights, gradients) in our layout."""
    return _LAYOUTS[layout][0](np.asarray(array))


def to_torch_layout(array, layout):
    """One of our arrays in the authors' layout."""
    return _LAYOUTS[layout][1](np.asarray(array))


def _indices(arrays, pattern_prefix, suffix):
    """Sorted integers i for which `pattern_prefix + str(i) + suffix` is a
    key."""
    found = []
    for key in arrays:
        if key.startswith(pattern_prefix) and key.endswith(suffix):
            middle = key[len(pattern_prefix): len(key) - len(suffix)]
            if middle.isdigit():
                found.append(int(middle))
    return sorted(found)


def _require(arrays, key, path):
    if key not in arrays:
        raise ValueError(
            f"{path}: expected tensor '{key}' of the authors' DIGAN state "
            f"dict; it is missing (keys start with "
            f"{sorted({k.split('.')[0] for k in arrays})})."
        )
    return arrays[key]


def _infer_fmaps(channels, path, network):
    """`fmaps` and `channel_max` reproducing the channel count per
    resolution `channels` {resolution: count}. Where every resolution is at
    the cap, any larger `fmaps` builds the same network: the smallest is
    returned."""
    channel_max = max(channels.values())
    below_max = [r for r in sorted(channels) if channels[r] < channel_max]
    if below_max:
        base = channels[below_max[0]] * below_max[0]
    else:
        base = channel_max * max(channels)
    fmaps = base / 32768
    for resolution, count in channels.items():
        if min(base // resolution, channel_max) != count:
            raise ValueError(
                f"{path}: the {network} channel counts per resolution "
                f"{dict(sorted(channels.items()))} do not follow "
                f"min(channel_base // res, channel_max) for any channel_base."
            )
    return fmaps, channel_max


def _generator_config(arrays, path):
    prefix = "G.synthesis.b"
    resolutions = _indices(arrays, prefix, ".torgb.weight")
    if not resolutions:
        raise ValueError(f"{path}: no generator tensors 'G.synthesis.*'.")
    channels = {r: arrays[f"{prefix}{r}.conv1.weight"].shape[0]
                for r in resolutions}
    fmaps, channel_max = _infer_fmaps(channels, path, "generator")
    layers = _indices(arrays, "G.mapping.fc", ".weight")
    w_dim = arrays[f"G.mapping.fc{layers[-1]}.weight"].shape[0]
    num_classes = 0
    if "G.mapping.embed.weight" in arrays:
        num_classes = arrays["G.mapping.embed.weight"].shape[1]
    z_dim = arrays["G.mapping.fc0.weight"].shape[1] - (
        w_dim if num_classes else 0
    )
    fuser = f"{prefix}4.input.input.coord_fuser"
    xy = _require(arrays, f"{fuser}.xyaffine.weight", path)
    motion_in = _require(arrays, f"{fuser}.affine.weight", path).shape[1]
    conv1 = arrays[f"{prefix}4.conv1.affine.weight"].shape[0]
    b4_in = arrays[f"{prefix}4.conv1.weight"].shape[1]
    fused = [r for r in resolutions if f"{prefix}{r}.coord_fuser.affine.weight"
             in arrays]
    return dict(
        resolution=max(resolutions),
        fmaps=fmaps,
        channel_max=channel_max,
        z_dim=z_dim,
        w_dim=w_dim,
        motion_dim=motion_in - w_dim,
        num_classes=num_classes,
        mapping_layers=len(layers),
        fmm_rank=conv1 // (b4_in + channels[4]),
        num_frequencies=xy.shape[0] // 3,
        input_resolution=min(fused) // 2 if fused else max(resolutions),
        extra_layer_resolutions=[
            r for r in resolutions
            if f"{prefix}{r}.extra_convs.0.weight" in arrays
        ],
    )


def _discriminator_config(arrays, prefix, path):
    resolutions = _indices(arrays, f"{prefix}.b", ".conv0.weight")
    if not resolutions:
        raise ValueError(f"{path}: no discriminator tensors '{prefix}.*'.")
    channels = {r: arrays[f"{prefix}.b{r}.conv0.weight"].shape[0]
                for r in resolutions}
    epilogue = arrays[f"{prefix}.b4.conv.weight"]
    channels[4] = epilogue.shape[0]
    fmaps, channel_max = _infer_fmaps(channels, path, prefix)
    mapping_layers = _indices(arrays, f"{prefix}.mapping.fc", ".weight")
    num_classes = 0
    if f"{prefix}.mapping.embed.weight" in arrays:
        num_classes = arrays[f"{prefix}.mapping.embed.weight"].shape[1]
    return dict(
        resolution=max(resolutions),
        fmaps=fmaps,
        channel_max=channel_max,
        num_classes=num_classes,
        cmap_dim=arrays[f"{prefix}.b4.out.weight"].shape[0]
        if num_classes else None,
        mapping_layers=len(mapping_layers) or 8,
        mbstd_num_channels=epilogue.shape[1] - epilogue.shape[0],
    )


def check_filters(arrays, path):
    for key, value in arrays.items():
        if key.endswith("resample_filter") and not np.allclose(
            value, _RESAMPLE_FILTER
        ):
            raise ValueError(
                f"{path}: '{key}' is not the [1, 3, 3, 1] filter DIGAN uses; "
                "this checkpoint is not supported."
            )


def load(
    path,
    motion_sigma=0.25,
    fourier_scale=math.sqrt(10.0),
    mbstd_group_size=4,
):
    """Builds our models from an `.npz` of the authors' state dicts, the
    configuration inferred from the tensor names and shapes.

    Args:
        path: `.npz` with every tensor of the authors' generator state dict
            under `G.<name>` and of their discriminator under `D.<name>`.
        motion_sigma, fourier_scale, mbstd_group_size: settings that the
            weights do not record (the paper's values by default).

    Returns:
        `(generator, image_discriminator, motion_discriminator)`.

    Raises:
        ValueError: naming the file and the tensor that is missing, extra or
            of the wrong shape.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`: no such file '{path}'.")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files
                  if k.startswith(("G.", "D."))}
    check_filters(arrays, path)
    return build_models(
        arrays, path,
        dict(motion_sigma=motion_sigma, fourier_scale=fourier_scale,
             **_generator_config(arrays, path)),
        *(dict(mbstd_group_size=mbstd_group_size,
               **_discriminator_config(arrays, prefix, path))
          for prefix in ("D.imageD", "D.videoD")))


def _fill(tensors, arrays, source):
    """Assigns the authors' `arrays` to `tensors` ((name, variable, layout)
    as `named_variables` yields them), each shape checked; every array but
    the fixed resampling filters must be used."""
    used = set()
    for name, variable, layout in tensors:
        value = from_torch_layout(_require(arrays, name, source), layout)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{source}: tensor '{name}' has shape "
                f"{list(arrays[name].shape)}, which does not fit the "
                f"configured model (expected {list(variable.shape)} after "
                "conversion to our layout)."
            )
        variable.assign(value.astype(np.float32))
        used.add(name)
    unused = sorted(
        k for k in arrays if k not in used and not k.endswith("filter")
    )
    if unused:
        raise ValueError(
            f"{source}: tensors not part of a DIGAN network: {unused[:10]}"
            f"{' ...' if len(unused) > 10 else ''}."
        )


def build_models(arrays, source, generator_config, image_config,
                 motion_config):
    """Our three models from the authors' tensors `arrays` (`G.<name>`,
    `D.<name>`, PyTorch layouts) and our constructor arguments; every
    tensor is checked against the model it must fill.

    Raises:
        ValueError: naming `source` and the tensor that is missing, extra
            or of the wrong shape.
    """
    models = (Generator(**generator_config),
              ImageDiscriminator(**image_config),
              MotionDiscriminator(**motion_config))
    _fill(named_variables(*models), arrays, source)
    return models


def build_generator(arrays, source, config):
    """`build_models` for a generator alone (`G.<name>` tensors only)."""
    generator = Generator(**config)
    _fill(_generator_tensors(generator), arrays, source)
    return generator


def save(path, generator, image_discriminator, motion_discriminator):
    """Writes our three models to `path` (.npz) in the authors' layout,
    readable by `load` and by `torch.load_state_dict` after stripping the
    `G.`/`D.` prefixes."""
    arrays = {
        name: to_torch_layout(variable.numpy(), layout)
        for name, variable, layout in named_variables(
            generator, image_discriminator, motion_discriminator
        )
    }
    np.savez(path, **arrays)


def write_keras_files(models, output, discriminators=True):
    """Writes (generator, image discriminator, motion discriminator) as
    `output` (.keras) and, with `discriminators`, `<output stem>.
    {image,motion}_discriminator.keras` beside it. Returns the paths."""
    generator, image_d, motion_d = models
    stem = output[: -len(".keras")]
    outputs = [(generator, output)]
    if discriminators:
        outputs += [(image_d, f"{stem}.image_discriminator.keras"),
                    (motion_d, f"{stem}.motion_discriminator.keras")]
    for model, target in outputs:
        atomic_files.save_model(model, target)
    return [target for _, target in outputs]
