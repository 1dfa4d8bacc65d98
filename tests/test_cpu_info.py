"""The CPU description the benchmarks record with every figure."""

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
