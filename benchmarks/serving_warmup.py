#!/usr/bin/env python3
"""First-request latency of an export through the TF1 session path (TF
Serving's), with and without running the export's warm-up file first, each
in a fresh process; then the steady-state time of the same request. Prints
the figures and writes them to --output (JSON).

  .venv/bin/python benchmarks/serving_warmup.py --resolution=128 --fmaps=0.25
"""

# isort: split
import digan_tf  # noqa: F401  (before TensorFlow: turns on oneDNN)

# isort: split
import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

from bench_record import write_record

from digan_tf.serving import export

_SERVER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    path, warm = sys.argv[1], sys.argv[2] == "1"

    def fields(data):
        '''(field number, bytes) of length-delimited protobuf fields.'''
        i = 0
        while i < len(data):
            key, shift = 0, 0
            while True:
                b = data[i]; i += 1; key |= (b & 127) << shift; shift += 7
                if b < 128: break
            size, shift = 0, 0
            while True:
                b = data[i]; i += 1; size |= (b & 127) << shift; shift += 7
                if b < 128: break
            yield key >> 3, data[i:i + size]; i += size

    start = time.monotonic()
    session = tf.compat.v1.Session(graph=tf.Graph())
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)

    def run(key, inputs):
        signature = meta.signature_def[key]
        return session.run(signature.outputs["video"].name, feed_dict={
            signature.inputs[k].name: v for k, v in inputs.items()})

    if warm:  # as TF Serving replays assets.extra/tf_serving_warmup_requests
        for record in tf.compat.v1.io.tf_record_iterator(
                path + "/assets.extra/tf_serving_warmup_requests"):
            (_, log), = fields(record)
            (_, request), = fields(log)
            parts = list(fields(request))
            spec = dict(fields(parts[0][1]))
            inputs = {}
            for _, entry in parts[1:]:
                entry = dict(fields(entry))
                proto = tensor_pb2.TensorProto.FromString(entry[2])
                inputs[entry[1].decode()] = tf.make_ndarray(proto)
            run(spec[3].decode(), inputs)
    loaded = time.monotonic() - start
    request = dict(seed=np.int64([3]), num_frames=np.int32(16))
    start = time.monotonic(); run("generate_from_seed", request)
    first = time.monotonic() - start
    start = time.monotonic(); run("generate_from_seed", request)
    print(json.dumps(dict(load=loaded, first=first,
                          steady=time.monotonic() - start)))
""")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--fmaps", type=float, default=0.25)
    parser.add_argument("--output", default="serving_warmup.json")
    args = parser.parse_args()
    generator = digan_tf.Generator(resolution=args.resolution,
                                   fmaps=args.fmaps)
    with tempfile.TemporaryDirectory() as directory:
        paths = export.export_generator(generator, directory, "bench")
        rows = {}
        for warm in ("0", "1"):
            result = subprocess.run(
                [sys.executable, "-c", _SERVER, paths.saved_model, warm],
                capture_output=True, text=True, check=True)
            rows[warm] = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"R={args.resolution}, fmaps {args.fmaps}: one 16-frame video "
          "through generate_from_seed, TF1 session path")
    names = {"0": "no warm-up", "1": "warm-up file"}
    for warm, name in names.items():
        row = rows[warm]
        print(f"  {name:<14} load {row['load']:6.2f} s   first request "
              f"{row['first']:6.2f} s   next {row['steady']:6.2f} s")
    write_record(args.output, dict(
        resolution=args.resolution, fmaps=args.fmaps, frames=16,
        seconds={names[warm]: row for warm, row in rows.items()}))


if __name__ == "__main__":
    main()
