"""A client for a generator served by TF Serving's REST API: request
bodies in the columnar "inputs" form, responses parsed as documented
(`tensorflow_serving/g3doc/api_rest.md`). Only the standard library and
NumPy, so it runs wherever `bin/query` does."""

import json
import urllib.error
import urllib.request

import numpy as np


class ServingError(RuntimeError):
    """The server answered with an error (its message is kept)."""


def predict_url(server, model_name, version=None):
    """`SERVER/v1/models/NAME[/versions/V]:predict`."""
    url = f"{server.rstrip('/')}/v1/models/{model_name}"
    if version is not None:
        url += f"/versions/{int(version)}"
    return url + ":predict"


def predict_request(inputs, signature_name="serving_default"):
    """The JSON body of a columnar predict request: {"signature_name": ...,
    "inputs": {name: nested lists}}. Scalars stay scalars (e.g.
    `num_frames`); inputs left out take the signature's defaults."""
    return {"signature_name": signature_name,
            "inputs": {name: np.asarray(value).tolist()
                       for name, value in inputs.items()}}


def parse_predict_response(body, output="video", dtype=np.uint8):
    """The `output` tensor of a predict response as an array. Columnar
    responses hold {"outputs": {name: ...}}, or the bare tensor when the
    signature has one output; errors hold {"error": message}."""
    if "error" in body:
        raise ServingError(body["error"])
    if "outputs" not in body:
        raise ServingError(f"Not a columnar predict response: keys "
                           f"{sorted(body)}.")
    outputs = body["outputs"]
    if isinstance(outputs, dict):
        if output not in outputs:
            raise ServingError(f"No output {output!r} in the response; it "
                               f"has {sorted(outputs)}.")
        outputs = outputs[output]
    return np.asarray(outputs, dtype)


def predict(server, model_name, inputs, signature_name="serving_default",
            version=None, timeout=600.0):
    """POSTs a predict request and returns the `video` array.

    Raises:
        ServingError: the server's error message (e.g. a request over the
            export's limits), or why it could not be reached.
    """
    url = predict_url(server, model_name, version)
    data = json.dumps(predict_request(inputs, signature_name)).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read())
        except ValueError:
            raise ServingError(f"{url}: HTTP {error.code}") from error
        if "error" not in body:
            raise ServingError(f"{url}: HTTP {error.code}") from error
    except urllib.error.URLError as error:
        raise ServingError(f"{url}: {error.reason}") from error
    return parse_predict_response(body)
