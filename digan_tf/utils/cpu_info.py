"""The CPU's model name and instruction-set flags, from Linux's
/proc/cpuinfo: which of TensorFlow's CPU kernels are fast depends on them
(docs/design.md section 12), so the benchmarks record them with every
figure and `layers/conv2d.py` picks its kernel gradient by them."""

import functools
import platform


@functools.cache
def cpu_info(path="/proc/cpuinfo"):
    """(model, frozenset of flags) of the first CPU in `path`. The model is
    its name with its family and model numbers ("AMD EPYC, family 26 model
    2"): virtual machines often show a bare name, and the numbers tell CPU
    generations apart whose matmul peaks differ 2x (AMD's family 25 runs
    AVX-512 on 256-bit units, family 26 on 512-bit ones). Where the file
    cannot be read (not Linux): the platform's processor name, no flags."""
    model, flags = platform.processor(), frozenset()
    numbers = {}
    try:
        with open(path) as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("cpu family", "model"):
                    numbers[key] = value.strip()
                elif key == "flags":
                    flags = frozenset(value.split())
                    break
    except OSError:
        pass
    if len(numbers) == 2:
        model += f", family {numbers['cpu family']} model {numbers['model']}"
    return model, flags


VECTOR_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c")


def vector_flags(flags):
    """The vector-instruction flags among `flags`, sorted: every AVX,
    AVX-512, AMX, FMA and F16C extension. All of them, not a chosen few:
    machines of one vendor differ in the small ones (AVX512_FP16, AVX_VNNI)
    as well as in the big ones."""
    return sorted(flag for flag in flags
                  if flag.startswith(VECTOR_FLAG_PREFIXES))
