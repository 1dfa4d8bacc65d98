"""Channel count per resolution shared by generator and discriminators."""

from digan_tf.utils import validation


def channels_at(resolution, fmaps, channel_max):
    """`min(int(32768 * fmaps) // resolution, channel_max)` (design.md
    sections 2, 3)."""
    return min(int(32768 * fmaps) // resolution, channel_max)


def check_channel_args(resolution, fmaps, channel_max, minimum_resolution):
    """Validates the size arguments common to all DIGAN networks."""
    resolution = validation.check_power_of_two(
        "resolution", resolution, minimum_resolution
    )
    fmaps = validation.check_float("fmaps", fmaps, exclusive_minimum=0.0)
    channel_max = validation.check_int("channel_max", channel_max, 1)
    if channels_at(resolution, fmaps, channel_max) < 1:
        raise ValueError(
            f"`fmaps`={fmaps} gives no channels at resolution {resolution}; "
            f"expected fmaps >= {resolution / 32768}."
        )
    return resolution, fmaps, channel_max
