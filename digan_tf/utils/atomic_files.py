"""Writes that either complete or leave nothing behind."""

import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same extension); renames it to
    `path` when the block completes, removes it if the block raises. A crash
    never leaves a half-written file under the final name."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    temporary = os.path.join(
        directory, f".{stem}.tmp-{uuid.uuid4().hex[:8]}{extension}"
    )
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_model(model, path):
    """`model.save(path)` through `atomic_path`; `path` must end in .keras."""
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"Model files must end in '.keras'; got '{path}'.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as temporary:
        model.save(temporary)
