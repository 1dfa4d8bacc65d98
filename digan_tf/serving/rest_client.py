"""A client for a generator served by TF Serving's REST API: request
bodies in the columnar "inputs" form, responses parsed as documented
(`tensorflow_serving/g3doc/api_rest.md`). Only the standard library and
NumPy, so it runs wherever `bin/query` does."""

import json
import socket
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
    `num_frames`)."""
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


def _call(url, data=None, timeout=600.0):
    """The JSON body of a GET (or a POST of `data`), with every failure a
    `ServingError` that names the URL and what went wrong."""
    headers = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode("utf-8", "replace").strip()[:300] or (
                error.reason)
        raise ServingError(f"{url}: HTTP {error.code}: {message}") from error
    except urllib.error.URLError as error:
        raise ServingError(f"{url}: cannot reach the server "
                           f"({error.reason}).") from error
    except (TimeoutError, socket.timeout) as error:
        raise ServingError(f"{url}: no answer within {timeout:g} s.") \
            from error
    try:
        return json.loads(raw)
    except ValueError as error:
        raise ServingError(f"{url}: the answer is not JSON: "
                           f"{raw[:200]!r}") from error


def predict(server, model_name, inputs, signature_name="serving_default",
            version=None, timeout=600.0):
    """POSTs a predict request and returns the `video` array.

    Raises:
        ServingError: the server's error message (e.g. a request over the
            export's limits), or why it could not be reached.
    """
    url = predict_url(server, model_name, version)
    data = json.dumps(predict_request(inputs, signature_name)).encode()
    return parse_predict_response(_call(url, data, timeout))


def metadata(server, model_name, version=None, timeout=60.0):
    """`GET .../metadata`: the served model's signatures, as
    {signature: {"inputs": {name: (dtype, shape)}, "outputs": ...}}."""
    url = predict_url(server, model_name, version)[: -len(":predict")]
    body = _call(url + "/metadata", timeout=timeout)
    try:
        defs = body["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError) as error:
        raise ServingError(f"{url}/metadata: no signature_def in the "
                           f"answer (keys {sorted(body)}).") from error

    def tensors(entries):
        return {name: (info.get("dtype", "?"), [
            int(d.get("size", -1)) for d in
            info.get("tensor_shape", {}).get("dim", [])])
            for name, info in sorted(entries.items())}

    return {key: {"inputs": tensors(value.get("inputs", {})),
                  "outputs": tensors(value.get("outputs", {}))}
            for key, value in sorted(defs.items())
            if not key.startswith("__")}
