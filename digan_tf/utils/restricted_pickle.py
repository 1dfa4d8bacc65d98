"""Reading pickles from outside without running them.

`pickle.load` calls whatever global a file names, so a downloaded pickle can
run any code. `load` resolves globals only through an allow-list: each
allowed `(module, name)` maps to the object to call in its place, and any
other global stops the load with an error that names it and the file.
"""

import pickle

import numpy as np

try:  # NumPy 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct

# NumPy arrays and dtypes as `ndarray.__reduce__` pickles them (NumPy 1 and
# 2 module names). `_reconstruct` makes an empty array; the pickle's BUILD
# fills it through `ndarray.__setstate__` from raw bytes. Object arrays
# would unpickle their items, so `load` refuses them.
NUMPY_ARRAYS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle names a global that is not on the allow-list."""


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, allowed, source, persistent_load):
        super().__init__(file)
        self._allowed = allowed
        self._source = source
        self._persistent = persistent_load

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"'{self._source}' names the global {module}.{name}, which "
                "is not allowed in this file (it could run code); nothing "
                "was loaded.") from None

    def persistent_load(self, pid):
        if self._persistent is None:
            raise pickle.UnpicklingError(
                f"'{self._source}' holds a persistent reference ({pid!r}), "
                "which this kind of file does not have.")
        return self._persistent(pid)


def load(file, allowed=None, source=None, persistent_load=None):
    """Unpickles `file` (a path or binary file object) with globals
    resolved through `allowed` (default `NUMPY_ARRAYS`).

    Args:
        file: path or binary file object.
        allowed: {(module, name): stand-in}.
        source: how errors name the file (default the path).
        persistent_load: callable for persistent ids (torch.save archives);
            None refuses them.

    Raises:
        RefusedGlobalError: a global outside `allowed`.
        pickle.UnpicklingError: a malformed file or an object array.
    """
    allowed = NUMPY_ARRAYS if allowed is None else allowed
    if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__"):
        source = source or str(file)
        with open(file, "rb") as f:
            return load(f, allowed, source, persistent_load)
    source = source or getattr(file, "name", "pickle")
    try:
        value = _Unpickler(file, allowed, source, persistent_load).load()
    except RefusedGlobalError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            IndexError, KeyError, AttributeError) as error:
        raise pickle.UnpicklingError(
            f"'{source}' is not a readable pickle: {error}") from error
    _refuse_object_arrays(value, source)
    return value


def _refuse_object_arrays(value, source):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray) and item.dtype.hasobject:
            raise pickle.UnpicklingError(
                f"'{source}' holds an array of Python objects; only "
                "numeric arrays are allowed.")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
