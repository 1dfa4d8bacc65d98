"""benchmarks/generator_step_parts.py splits the G step into the
generator's part and the discriminators' part: together they must execute
the whole step's matmuls and convolutions, no more and no fewer, or the
rates it prints would be of some other work."""

from tests.testing import benchmark_module

train_speed = benchmark_module("train_speed")
generator_step_parts = benchmark_module("generator_step_parts")


def test_the_parts_add_up_to_the_whole_generator_step():
    model = train_speed.build(train_speed.CONFIGS[32], "float32")
    functions = generator_step_parts.step_functions(
        model, train_speed.example_batch(32))
    gflop = train_speed.phase_gflop(functions)
    generator, discriminators = (gflop["generator part"],
                                 gflop["discriminator part"])
    # Each part has work of its own (not one part holding everything).
    assert min(generator, discriminators) > 0.1 * gflop["G step"]
    assert abs(generator + discriminators - gflop["G step"]) <= (
        1e-9 * gflop["G step"])
