"""The CPU description the benchmarks record with every figure."""

import pytest

from digan_tf.utils import cpu_info


def test_cpu_model_and_whole_word_flags_of_the_first_cpu(tmp_path):
    """avx512fp16 alone is not avx512f; the family and model numbers join
    the name; a second CPU's lines are not read."""
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\n"
                    "model name\t: Some CPU @ 2GHz\n"
                    "flags\t\t: fpu avx2 avx512fp16\n\nprocessor\t: 1\n"
                    "cpu family\t: 25\nflags\t\t: fpu avx512f\n")
    model, flags = cpu_info.cpu_info(str(path))
    assert model == "Some CPU @ 2GHz, family 26 model 2"
    assert flags == {"fpu", "avx2", "avx512fp16"}
    assert cpu_info.cpu_info(str(tmp_path / "absent"))[1] == frozenset()


def test_vector_flags_keep_every_vector_extension_and_nothing_else():
    """What a benchmark record keeps of the flags: the AMX and small AVX-512
    extensions too (they decide oneDNN's kernels), not fpu or sse."""
    flags = {"fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
             "avx512_fp16", "avx_vnni", "amx_bf16", "amx_tile", "vnmi"}
    assert cpu_info.vector_flags(flags) == [
        "amx_bf16", "amx_tile", "avx", "avx2", "avx512_fp16", "avx512f",
        "avx_vnni", "f16c", "fma"]


@pytest.mark.parametrize("vendor,family,flags,bits", [
    ("AuthenticAMD", 25, "avx2 fma", 256),  # Zen 3
    ("AuthenticAMD", 25, "avx2 avx512f", 256),  # Zen 4: two 256-bit halves
    ("AuthenticAMD", 26, "avx2 avx512f", 512),  # Zen 5
    ("GenuineIntel", 6, "avx2 avx512f amx_tile", 512),  # a Xeon
    ("GenuineIntel", 6, "avx2 avx_vnni", 256),
    ("AuthenticAMD", 25, "sse4_2", None),
    ("AuthenticAMD", 25, "", None)])
def test_vector_unit_width_from_flags_vendor_and_family(
        tmp_path, vendor, family, flags, bits):
    """What decides Winograd's convolutions (`conv2d.winograd_min_macs`),
    with the vendor: AVX-512 alone does not make a 512-bit unit; AMD's
    family 25 splits it."""
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\n"
                    f"cpu family\t: {family}\nflags\t\t: {flags}\n\n"
                    "processor\t: 1\nflags\t\t: avx2 avx512f\n")
    assert cpu_info.vector_unit_bits(str(path)) == bits
    assert cpu_info.vendor(str(path)) == vendor
    assert cpu_info.vendor(str(tmp_path / "absent")) is None
