"""The CPU's model name and instruction-set flags, from Linux's
/proc/cpuinfo: which of TensorFlow's CPU kernels are fast depends on them
(`layers/conv2d.py`), and the benchmarks record them with every figure."""

import functools
import platform


@functools.cache
def cpu_info(path="/proc/cpuinfo"):
    """(model name, frozenset of flags) of the first CPU in `path`; where
    it cannot be read (not Linux), the platform's processor name and no
    flags."""
    model, flags = platform.processor(), frozenset()
    try:
        with open(path) as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = frozenset(value.split())
                    break
    except OSError:
        pass
    return model, flags
