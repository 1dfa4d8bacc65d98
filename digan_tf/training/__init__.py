"""Training: the configuration, the orchestration of bin/train, the
optimizer, losses, augmentation, callbacks and distribution strategies.
"""
