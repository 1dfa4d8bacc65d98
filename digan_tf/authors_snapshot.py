"""Reads the authors' `network-snapshot-*.pkl` files without PyTorch and
without running anything they contain (design.md section 10).

Such a file is `pickle.dump(dict(training_set_kwargs, G, D, G_ema,
augment_pipe))`. Each network is a StyleGAN2-ADA "persistent" object: its
class's source code, its constructor arguments and its module state,
rebuilt by `torch_utils.persistence` *by executing that source*. Tensors
are `torch.Tensor`s whose storages are nested `torch.save` archives.

Here every global the format uses maps to an inert stand-in
(`restricted_pickle`): networks become `Network(class_name, init_kwargs,
state, source)` with the source kept as text; storages are parsed from
their archives as NumPy arrays (views with offsets and strides rebuilt);
OmegaConf configs become plain dicts. Any other global stops the read with
an error naming it.
"""

import collections
import dataclasses
import io
import os
import pickle
import struct

import numpy as np

from digan_tf import authors_weights
from digan_tf.utils import restricted_pickle

_TORCH_SAVE_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16,
    "DoubleStorage": np.float64, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "BFloat16Storage": "bfloat16",
}


@dataclasses.dataclass
class Network:
    """One pickled network: what its constructor got and its state."""

    class_name: str
    init_kwargs: dict
    state_dict: dict      # {"a.b.weight": np.ndarray}, as torch names them
    source: str           # the module source the file carries (never run)


class _Inert:
    """Stands in for a Python object of the file (a torch module, a
    distribution, an OmegaConf node): keeps its arguments and state."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def attributes(self):
        """The pickled `__dict__` (a BUILD state may be (dict, slots))."""
        state = getattr(self, "state", None)
        if isinstance(state, tuple):
            merged = {}
            for part in state:
                merged.update(part or {})
            return merged
        return state if isinstance(state, dict) else {}


def _inert(qualified_name):
    return type(qualified_name, (_Inert,), {})


def _rebuild_tensor(storage, offset, size, stride, *unused):
    itemsize = storage.dtype.itemsize
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if any(n == 0 for n in size):
        needed = offset
    if offset < 0 or needed > storage.size:
        raise pickle.UnpicklingError(
            f"a tensor view (offset {offset}, size {list(size)}, stride "
            f"{list(stride)}) reaches past its storage of {storage.size} "
            "elements")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size),
        strides=tuple(s * itemsize for s in stride))
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


def _bfloat16_to_float32(raw):
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _load_storage_archive(archive):
    """The storage a legacy `torch.save` archive holds, as a 1-D array."""
    stream = io.BytesIO(archive)
    storages = {}

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5
                and pid[0] == "storage"):
            raise pickle.UnpicklingError(
                f"unexpected persistent id {pid!r} in a tensor archive")
        storage_type, key, _, numel = pid[1], str(pid[2]), pid[3], pid[4]
        storages.setdefault(key, (storage_type, int(numel)))
        return key

    header = [restricted_pickle.load(stream, _ARCHIVE_GLOBALS,
                                     "tensor archive") for _ in range(3)]
    if header[0] != _TORCH_SAVE_MAGIC or header[1] != 1001:
        raise pickle.UnpicklingError("a tensor archive has no torch.save "
                                     "header")
    if not header[2].get("little_endian", True):
        raise pickle.UnpicklingError("big-endian tensor archives are not "
                                     "supported")
    key = restricted_pickle.load(stream, _ARCHIVE_GLOBALS, "tensor archive",
                                 persistent_load)
    keys = restricted_pickle.load(stream, _ARCHIVE_GLOBALS, "tensor archive")
    arrays = {}
    for stored in keys:
        storage_type, _ = storages[str(stored)]
        dtype = _STORAGE_DTYPES[storage_type]
        raw_dtype = np.uint16 if dtype == "bfloat16" else np.dtype(dtype)
        size_bytes = stream.read(8)
        if len(size_bytes) != 8:
            raise pickle.UnpicklingError("a tensor archive is truncated")
        (count,) = struct.unpack("<q", size_bytes)
        raw = stream.read(count * np.dtype(raw_dtype).itemsize)
        if len(raw) != count * np.dtype(raw_dtype).itemsize:
            raise pickle.UnpicklingError("a tensor archive is truncated")
        array = np.frombuffer(raw, raw_dtype)
        arrays[str(stored)] = (_bfloat16_to_float32(array)
                               if dtype == "bfloat16" else array)
    return arrays[key]


# A storage's type is named as a global (`torch FloatStorage`): its name.
_ARCHIVE_GLOBALS = {
    ("torch", name): name for name in _STORAGE_DTYPES}


def _reconstruct_persistent(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError(
            "a persistent object is not a pickled class instance")
    return _Persistent(meta)


class _Persistent:
    """A `torch_utils.persistence` object: source text, class name and the
    instance's state, nothing executed."""

    def __init__(self, meta):
        self.class_name = meta.get("class_name")
        self.source = meta.get("module_src", "")
        self.state = meta.get("state") or {}

    def attributes(self):
        return self.state if isinstance(self.state, dict) else {}


def _scalar(dtype, data):
    return np.frombuffer(data, dtype)[0]


def _omegaconf_to_plain(value):
    """OmegaConf DictConfig / node stand-ins -> dicts and values."""
    if isinstance(value, _Inert):
        attributes = value.attributes()
        if "_content" in attributes:
            return _omegaconf_to_plain(attributes["_content"])
        if "_val" in attributes:
            return _omegaconf_to_plain(attributes["_val"])
        return value
    if isinstance(value, dict):
        return {k: _omegaconf_to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_omegaconf_to_plain(v) for v in value)
    return value


_SNAPSHOT_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"):
        _reconstruct_persistent,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_archive,
    ("torch", "Size"): tuple,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "dict"): dict,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy", "dtype"): np.dtype,
    ("typing", "Any"): "typing.Any",
    **{key: _inert(".".join(key)) for key in (
        ("torch.nn.modules.container", "Sequential"),
        ("torch.nn.modules.container", "ModuleList"),
        ("torch.nn.modules.container", "ModuleDict"),
        ("omegaconf.dictconfig", "DictConfig"),
        ("omegaconf.listconfig", "ListConfig"),
        ("omegaconf.base", "ContainerMetadata"),
        ("omegaconf.base", "Metadata"),
        ("omegaconf.nodes", "AnyNode"),
        ("omegaconf.nodes", "IntegerNode"),
        ("omegaconf.nodes", "FloatNode"),
        ("omegaconf.nodes", "StringNode"),
        ("omegaconf.nodes", "BooleanNode"),
        ("torch.distributions.beta", "Beta"),
        ("torch.distributions.dirichlet", "Dirichlet"),
        ("torch.distributions.uniform", "Uniform"),
    )},
}


def _state_dict(module, prefix=""):
    """{torch name: array} of a module's parameters and buffers, walked
    through its submodules as `nn.Module.state_dict` names them."""
    attributes = module.attributes()
    arrays = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (attributes.get(group) or {}).items():
            if value is not None:
                arrays[prefix + name] = np.asarray(value)
    for name, child in (attributes.get("_modules") or {}).items():
        if child is not None:
            arrays.update(_state_dict(child, f"{prefix}{name}."))
    return arrays


def _network(value, key, source):
    if not isinstance(value, _Persistent):
        raise ValueError(f"'{source}': '{key}' is not a pickled network.")
    attributes = value.attributes()
    return Network(
        class_name=value.class_name,
        init_kwargs=_omegaconf_to_plain(dict(
            attributes.get("_init_kwargs") or {})),
        state_dict=_state_dict(value),
        source=value.source)


def read(path):
    """{"G", "D", "G_ema": `Network`, "training_set_kwargs": dict} of an
    authors' snapshot pickle.

    Raises:
        restricted_pickle.RefusedGlobalError: the file names a global that
            such files do not contain (it could run code).
        pickle.UnpicklingError / ValueError: a truncated or corrupt file,
            or one that is not a DIGAN snapshot; the message names it.
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`: no such file '{path}'.")
    try:
        snapshot = restricted_pickle.load(path, _SNAPSHOT_GLOBALS)
    except KeyError as error:
        raise pickle.UnpicklingError(
            f"'{path}': a tensor archive names an unknown storage "
            f"{error}") from error
    if not isinstance(snapshot, dict) or not {"G", "D", "G_ema"} <= set(
            snapshot):
        raise ValueError(f"'{path}' is not a DIGAN training snapshot "
                         "(expected a dict with G, D and G_ema).")
    result = {key: _network(snapshot[key], key, path)
              for key in ("G", "D", "G_ema")}
    result["training_set_kwargs"] = _omegaconf_to_plain(
        snapshot.get("training_set_kwargs") or {})
    return result


def _unsupported(source, what):
    return ValueError(f"'{source}': {what}; digan_tf builds DIGAN's "
                      "published architecture only.")


def _recorded(kwargs, key, source, network):
    if key not in kwargs:
        raise ValueError(f"'{source}': {network} records no constructor "
                         f"argument '{key}'; is it a DIGAN snapshot?")
    return kwargs[key]


def generator_config(kwargs, source="snapshot"):
    """Our `Generator` arguments from the authors' `Generator(**kwargs)`
    (what the snapshot records). Their code fixes the motion code size to
    w_dim and the Fourier scale to sqrt(10) (our defaults)."""
    cfg = kwargs.get("cfg") or {}
    synthesis = kwargs.get("synthesis_kwargs") or {}
    inputs = cfg.get("input") or {}
    fuser = inputs.get("coord_fuser_cfg") or {}
    if inputs.get("type", "coords") != "coords" or not fuser.get(
            "enabled", True):
        raise _unsupported(source, "its generator input is not the "
                           "coordinate fuser")
    if cfg.get("use_noise") or cfg.get("upsampling_mode",
                                       "nearest") != "nearest":
        raise _unsupported(source, "its generator uses noise inputs or "
                           "non-nearest up-sampling")
    fmm = cfg.get("fmm") or {}
    if not fmm.get("enabled", True) or fmm.get("activation",
                                               "demod") != "demod":
        raise _unsupported(source, "its generator does not use demodulated "
                           "FMM layers")
    resolution = int(_recorded(kwargs, "img_resolution", source, "G_ema"))
    sizes = {int(r): c.get("predictable_emb_size")
             for r, c in (fuser.get("res_configs") or {}).items()
             if int(r) <= resolution}
    if len(set(sizes.values())) > 1:
        raise _unsupported(source, f"its Fourier embedding sizes differ per "
                           f"resolution ({sizes})")
    extra = {int(r): int(n)
             for r, n in (cfg.get("num_extra_convs") or {}).items()}
    if any(n > 1 for n in extra.values()):
        raise _unsupported(source, f"it has several extra layers in a block "
                           f"({extra})")
    w_dim = int(_recorded(kwargs, "w_dim", source, "G_ema"))
    return dict(
        resolution=resolution,
        fmaps=synthesis.get("channel_base", 32768) / 32768,
        channel_max=int(synthesis.get("channel_max", 512)),
        z_dim=int(_recorded(kwargs, "z_dim", source, "G_ema")),
        w_dim=w_dim,
        motion_dim=w_dim,
        num_classes=int(kwargs.get("c_dim", 0)),
        mapping_layers=int((kwargs.get("mapping_kwargs") or {}).get(
            "num_layers", 8)),
        fmm_rank=int(fmm.get("rank", 10)),
        motion_sigma=float(fuser.get("motion_sigma", 0.25)),
        num_frequencies=int(next(iter(sizes.values()), 128)),
        input_resolution=int(inputs.get("resolution", 32)),
        extra_layer_resolutions=sorted(
            r for r, n in extra.items() if n and r <= resolution),
    )


def discriminator_config(kwargs, source="snapshot"):
    """Our discriminator arguments from the authors' discriminator
    `(**kwargs)`: both of theirs (image and motion) share them, conv clamp
    included."""
    epilogue = kwargs.get("epilogue_kwargs") or {}
    clamp = kwargs.get("conv_clamp")
    return dict(
        resolution=int(_recorded(kwargs, "img_resolution", source, "D")),
        fmaps=kwargs.get("channel_base", 32768) / 32768,
        channel_max=int(kwargs.get("channel_max", 512)),
        num_classes=int(kwargs.get("c_dim", 0)),
        cmap_dim=kwargs.get("cmap_dim"),
        mbstd_group_size=int(epilogue.get("mbstd_group_size", 4)),
        mbstd_num_channels=int(epilogue.get("mbstd_num_channels", 1)),
        conv_clamp=None if clamp is None else float(clamp),
    )


def _arrays(network, prefix):
    return {f"{prefix}.{k}": v for k, v in network.state_dict.items()}


def _models(snapshot, path):
    """(our generator of G_ema, image and motion discriminators of D)."""
    arrays = {**_arrays(snapshot["G_ema"], "G"), **_arrays(snapshot["D"], "D")}
    authors_weights.check_filters(arrays, path)
    d_config = discriminator_config(snapshot["D"].init_kwargs, path)
    return authors_weights.build_models(
        arrays, path, generator_config(snapshot["G_ema"].init_kwargs, path),
        d_config, dict(d_config))


def load_models(path):
    """(generator = G_ema, image discriminator, motion discriminator) of an
    authors' snapshot, configured from what the file records."""
    return _models(read(path), path)


def load_training_networks(path):
    """{"generator", "ema_generator", "image_discriminator",
    "motion_discriminator"} of a snapshot: G and G_ema both, to resume
    training from the authors' state."""
    snapshot = read(path)
    ema_generator, image_d, motion_d = _models(snapshot, path)
    arrays = _arrays(snapshot["G"], "G")
    authors_weights.check_filters(arrays, path)
    generator = authors_weights.build_generator(
        arrays, path, generator_config(snapshot["G"].init_kwargs, path))
    return {"generator": generator, "ema_generator": ema_generator,
            "image_discriminator": image_d, "motion_discriminator": motion_d}
