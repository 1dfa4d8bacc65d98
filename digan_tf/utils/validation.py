"""Argument checks that raise a ValueError naming the argument, what it got
and what was expected, before any TensorFlow op sees a bad value."""

import numbers


def check_int(name, value, minimum=0):
    """Returns `value` if it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; got {value!r}."
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; got {value}."
        )
    return int(value)


def check_float(name, value, minimum=None, exclusive_minimum=None):
    """Returns `value` as a float if it is a real number in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a number; got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    if exclusive_minimum is not None and value <= exclusive_minimum:
        raise ValueError(
            f"`{name}` must be > {exclusive_minimum}; got {value}."
        )
    return float(value)


def check_power_of_two(name, value, minimum):
    """Returns `value` if it is a power of two >= `minimum`."""
    value = check_int(name, value, minimum)
    if value & (value - 1):
        raise ValueError(
            f"`{name}` must be a power of two >= {minimum}; got {value}."
        )
    return value


def check_tensor(name, tensor, shape, dtypes):
    """Checks the static rank, known dimensions and dtype of `tensor`.

    Args:
        name: argument name used in the message.
        tensor: a tensor (eager or symbolic).
        shape: expected shape; `None` entries accept any size.
        dtypes: allowed dtype names, e.g. ("float32",).
    """
    got_shape = tuple(tensor.shape)
    expected = "[" + ", ".join("?" if d is None else str(d) for d in shape)
    expected += "]"
    if len(got_shape) != len(shape) or any(
        want is not None and got is not None and want != got
        for want, got in zip(shape, got_shape)
    ):
        raise ValueError(
            f"`{name}` must have shape {expected}; got shape "
            f"{list(got_shape)}."
        )
    dtype = getattr(tensor.dtype, "name", str(tensor.dtype))
    if dtype not in dtypes:
        raise ValueError(
            f"`{name}` must have dtype {' or '.join(dtypes)}; got {dtype}."
        )


def check_labels(labels, batch, num_classes):
    """Checks integer class `labels` [batch]; their values too when they are
    concrete (eager), since one_hot silently zeroes out-of-range labels."""
    check_tensor("labels", labels, (batch,), ("int32", "int64"))
    if hasattr(labels, "numpy"):
        values = labels.numpy()
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"`labels` must be in [0, {num_classes - 1}]; got values "
                f"from {values.min()} to {values.max()}."
            )
