"""Datasets: preparing TFRecords from videos, and tf.data pipelines."""
