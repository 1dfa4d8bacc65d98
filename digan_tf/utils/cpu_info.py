"""The CPU's model name and instruction-set flags, from Linux's
/proc/cpuinfo: which of TensorFlow's CPU kernels are fast depends on them
(docs/design.md section 12), so the benchmarks record them with every
figure and `layers/conv2d.py` picks its kernel gradient by them."""

import functools
import platform


@functools.cache
def _first_cpu_fields(path):
    """{field: value} of the first CPU's block in `path` ({} where the file
    cannot be read)."""
    fields = {}
    try:
        with open(path) as cpuinfo:
            for line in cpuinfo:
                key, separator, value = line.partition(":")
                if not separator:
                    if fields:
                        break  # the blank line after the first CPU
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_info(path="/proc/cpuinfo"):
    """(model, frozenset of flags) of the first CPU in `path`. The model is
    its name with its family and model numbers ("AMD EPYC, family 26 model
    2"): virtual machines often show a bare name, and the numbers tell CPU
    generations apart whose matmul peaks differ 2x (AMD's family 25 runs
    AVX-512 on 256-bit units, family 26 on 512-bit ones). Where the file
    cannot be read (not Linux): the platform's processor name, no flags."""
    fields = _first_cpu_fields(path)
    model = fields.get("model name", platform.processor())
    if "cpu family" in fields and "model" in fields:
        model += f", family {fields['cpu family']} model {fields['model']}"
    return model, _flags(fields)


def _flags(fields):
    """The instruction-set flags of `_first_cpu_fields`' CPU."""
    return frozenset(fields.get("flags", "").split())


def vendor(path="/proc/cpuinfo"):
    """The first CPU's vendor ("AuthenticAMD", "GenuineIntel"; None where
    unknown): CPUs of one vector width differ by vendor in which of
    TensorFlow's kernels are fast (`layers/conv2d.winograd_min_macs`)."""
    return _first_cpu_fields(path).get("vendor_id")


def vector_unit_bits(path="/proc/cpuinfo"):
    """How wide the CPU's floating-point vector units are: 256 on AVX2 CPUs
    without AVX-512 and on AMD's family 25 (Zen 4 runs each AVX-512
    instruction on two 256-bit halves), 512 on other AVX-512 CPUs (Intel
    Xeons, AMD's family 26), None without AVX2 or flags. With the memory
    bandwidth, it decides whether an algorithm that trades multiply-adds
    for memory traffic pays (`layers/conv2d.winograd_min_macs`)."""
    fields = _first_cpu_fields(path)
    flags = _flags(fields)
    if "avx2" not in flags:
        return None
    if "avx512f" not in flags or (vendor(path) == "AuthenticAMD"
                                  and fields.get("cpu family") == "25"):
        return 256
    return 512


VECTOR_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c")


def vector_flags(flags):
    """The vector-instruction flags among `flags`, sorted: every AVX,
    AVX-512, AMX, FMA and F16C extension. All of them, not a chosen few:
    machines of one vendor differ in the small ones (AVX512_FP16, AVX_VNNI)
    as well as in the big ones."""
    return sorted(flag for flag in flags
                  if flag.startswith(VECTOR_FLAG_PREFIXES))
