"""tritonclient (HTTP, default binary tensors) against modelfn's Open Inference Protocol.
Usage: oip_tritonclient.py HOST:PORT REFERENCES_JSON

Expects the iris ONNX function. Exits non-zero on the first failed check.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, refs_path = sys.argv[1:3]
refs = json.load(open(refs_path))
client = httpclient.InferenceServerClient(url=url)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    checks += 1


check(client.is_server_live() and client.is_server_ready(), "live and ready")
check(client.is_model_ready("iris"), "iris ready")
meta = client.get_model_metadata("iris")
check(meta["inputs"][0]["shape"] == [-1, 4], "metadata %r" % meta)

rows = np.array(refs["rows"], dtype=np.float32)
names = ["setosa", "versicolor", "virginica"]
for binary in (True, False):
    inp = httpclient.InferInput("input", list(rows.shape), "FP32")
    inp.set_data_from_numpy(rows, binary_data=binary)
    result = client.infer("iris", [inp])
    labels = result.as_numpy("label")
    probs = result.as_numpy("probabilities")
    check(labels is not None and probs is not None, "outputs present (binary=%s)" % binary)
    want_labels = [names[i] for i in refs["labels"]]
    got = [x.decode() if isinstance(x, bytes) else str(x) for x in labels.reshape(-1)]
    check(got == want_labels, "labels equal the references (binary=%s)" % binary)
    check(probs.shape == (len(rows), 3), "probabilities shape %r" % (probs.shape,))
    check(np.abs(probs - np.array(refs["probabilities"], dtype=np.float32)).max() <= 1e-5, "probabilities within 1e-5 (binary=%s)" % binary)

# A request for a specific version, and errors as tritonclient reports them.
inp = httpclient.InferInput("input", [1, 4], "FP32")
inp.set_data_from_numpy(rows[:1])
check(client.infer("iris", [inp], model_version="1").as_numpy("label") is not None, "version 1")
for model, want in [("nope", "404"), ("iris", None)]:
    try:
        bad = httpclient.InferInput("input", [1, 3], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        client.infer(model, [bad])
        check(False, "%s should fail" % model)
    except InferenceServerException as e:
        check((want or "400") in str(e.status()) or (want or "400") in str(e), "%s: %s" % (model, e))
print("OK %d checks" % checks)
