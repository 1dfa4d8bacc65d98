"""A stand-in for TF Serving's REST API (the real server binary cannot be
installed here): serves one model's SavedModel versions with TensorFlow
only, following `tensorflow_serving/g3doc/api_rest.md` for the columnar
predict form and its error bodies, and filling missing inputs from
`SignatureDef.defaults` as TF Serving's predict_util does.

    python tests/tf_serving_stand_in.py BASE_PATH MODEL_NAME

prints the port it listens on, then serves until killed.
"""

import http.server
import json
import os
import re
import sys

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

_PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")
_METADATA = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?/metadata$")


def _signature_defs(path):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto.meta_graphs[0].signature_def


class Model:
    def __init__(self, base, name):
        self.name = name
        self.versions = {}
        for entry in os.listdir(base):
            if entry.isdigit():
                path = os.path.join(base, entry)
                self.versions[int(entry)] = (tf.saved_model.load(path),
                                             _signature_defs(path))

    def metadata(self, version):
        """TF Serving's GetModelMetadata answer, as its REST API prints it
        (the SignatureDefMap through protobuf's JSON mapping)."""
        version = version or max(self.versions)
        defs = self.versions[version][1]
        return {"model_spec": {"name": self.name, "version": str(version)},
                "metadata": {"signature_def": {"signature_def": {
                    key: json_format.MessageToDict(value)
                    for key, value in defs.items()}}}}

    def predict(self, version, body):
        if "instances" in body:
            raise ValueError("this stand-in takes the columnar 'inputs' form")
        loaded, defs = self.versions[version or max(self.versions)]
        key = body.get("signature_name", "serving_default")
        if key not in defs:
            raise ValueError(f"Serving signature name: \"{key}\" not found "
                             "in signature def")
        signature = defs[key]
        given = body.get("inputs", {})
        extra = set(given) - set(signature.inputs)
        if extra:
            raise ValueError(f"input tensor alias not found in signature: "
                             f"{sorted(extra)}")
        feeds = {}
        for alias, info in signature.inputs.items():
            if alias in given:
                feeds[alias] = tf.constant(
                    given[alias], tf.dtypes.as_dtype(info.dtype))
            elif alias in signature.defaults:
                feeds[alias] = tf.constant(
                    tf.make_ndarray(signature.defaults[alias]))
            else:
                raise ValueError(
                    f"Signature input alias: {alias} not found in request "
                    "and no default value provided.")
        outputs = {k: v.numpy().tolist()
                   for k, v in loaded.signatures[key](**feeds).items()}
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values()))}
        return {"outputs": outputs}


def serve(model):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _match(self, pattern):
            """The path's match for this model, or None after a 404."""
            match = pattern.match(self.path)
            if not match or match.group(1) != model.name:
                self._reply(404, {"error": f"Servable not found for "
                                           f"request: {self.path}"})
                return None
            return match

        def do_GET(self):
            match = self._match(_METADATA)
            if not match:
                return
            self._reply(200, model.metadata(match.group(2) and
                                            int(match.group(2))))

        def do_POST(self):
            match = self._match(_PREDICT)
            if not match:
                return
            body = json.loads(self.rfile.read(
                int(self.headers["Content-Length"])))
            version = match.group(2) and int(match.group(2))
            try:
                self._reply(200, model.predict(version, body))
            except (ValueError, tf.errors.OpError) as error:
                message = getattr(error, "message", str(error))
                self._reply(400, {"error": message})

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(Model(sys.argv[1], sys.argv[2]))
