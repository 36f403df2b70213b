#!/usr/bin/env python3
"""Train the example models on data sets scikit-learn ships and export them to ONNX.

Every model is trained with fixed seeds, exported the way users' converters write
by default (skl2onnx, onnxmltools), and checked with onnxruntime. Beside each
model.onnx the script writes references.json: held-out rows with onnxruntime's
own labels and probabilities (or values), which the Rust parity tests read.

Usage: python scripts/make-models.py [--out REPO_ROOT]
Install the pinned versions first: pip install -r scripts/requirements-models.txt
"""
import argparse
import json
import os

import numpy as np
import onnxruntime as ort
from sklearn import datasets
from sklearn.ensemble import (GradientBoostingClassifier, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType

SEED = 42


def camel(name):
    """'mean concave points' -> 'meanConcavePoints' (the naming of seed 004)."""
    first, *rest = name.split()
    return first + "".join(w.capitalize() for w in rest)
REFERENCE_ROWS = 40


def onnx_outputs(path, rows):
    """Run the exported model with onnxruntime itself: (labels, probabilities or None)."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: np.asarray(rows, dtype=np.float32)})
    first = outs[0]
    if len(outs) == 1:  # a regressor: one tensor of values
        return [float(v) for v in np.asarray(first).reshape(len(rows), -1)[:, 0]], None
    labels = [x.item() if hasattr(x, "item") else x for x in np.asarray(first).reshape(-1)]
    probs = outs[1]
    if isinstance(probs, list):  # ZipMap: a list of {class: p}
        keys = list(probs[0].keys())
        probs = [[float(m[k]) for k in keys] for m in probs]
    else:
        probs = np.asarray(probs).tolist()
    return labels, probs


def write(out_dir, onx, x_test, inputs, extra=None):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    rows = np.asarray(x_test[:REFERENCE_ROWS], dtype=np.float32)
    labels, probs = onnx_outputs(path, rows)
    ref = {
        "inputs": inputs,
        "rows": [[float(v) for v in r] for r in rows],
    }
    if probs is None:
        ref["values"] = labels
    else:
        ref["labels"] = labels
        ref["probabilities"] = probs
    if extra:
        ref.update(extra)
    with open(os.path.join(out_dir, "references.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(f"{out_dir}: {os.path.getsize(path)} bytes, {len(rows)} reference rows")


def write_digit_png(out_dir, row, label):
    """A held-out digit as a 32x32 PNG (dark ink on white, as a scan), base64 in a request."""
    import base64
    import io
    from PIL import Image
    pixels = (255 - np.asarray(row, dtype=np.float64).reshape(8, 8) * 255.0 / 16.0).round().astype(np.uint8)
    img = Image.fromarray(pixels, mode="L").resize((32, 32), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    with open(os.path.join(out_dir, "request.json"), "w") as f:
        json.dump({"image": base64.b64encode(buf.getvalue()).decode()}, f)
        f.write("\n")
    with open(os.path.join(out_dir, "response.json"), "w") as f:
        json.dump({"digit": label}, f)
        f.write("\n")


def skl(model, n_features, **options):
    return to_onnx(model, initial_types=[("input", FloatTensorType([None, n_features]))],
                   target_opset={"": 17, "ai.onnx.ml": 3}, options=options or None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().out
    ex = lambda name: os.path.join(root, "examples", name)
    fixture = lambda name: os.path.join(root, "tests", "models", name)

    # S1 (seed 003): iris random forest, 100 trees, split as in the seed. ZipMap output (skl2onnx default).
    iris = datasets.load_iris()
    x_tr, x_te, y_tr, y_te = train_test_split(iris.data, iris.target, test_size=0.33, random_state=SEED)
    rfc = RandomForestClassifier(n_estimators=100, random_state=SEED).fit(x_tr, y_tr)
    print("iris accuracy", rfc.score(x_te, y_te))
    write(ex("iris"), skl(rfc, 4), x_te, ["sl", "sw", "pl", "pw"])
    # The seed's own handler serves a joblib dump of the forest (examples/iris-python).
    import joblib
    joblib.dump(rfc, ex("iris-python") + "/model.joblib")
    # The same forest exported without ZipMap (a plain probability tensor), and trained on string labels.
    write(fixture("iris-plain"), skl(rfc, 4, zipmap=False), x_te, ["sl", "sw", "pl", "pw"])
    names = np.array(iris.target_names)
    rfs = RandomForestClassifier(n_estimators=20, random_state=SEED).fit(x_tr, names[y_tr])
    write(fixture("iris-strings"), skl(rfs, 4), x_te, ["sl", "sw", "pl", "pw"])

    # S2 (seed 004): gradient boosting on five named breast-cancer features.
    bc = datasets.load_breast_cancer()
    cols = ["mean concave points", "worst radius", "worst texture", "worst area", "worst concave points"]
    idx = [list(bc.feature_names).index(c) for c in cols]
    x5 = bc.data[:, idx]
    x_tr, x_te, y_tr, y_te = train_test_split(x5, bc.target, test_size=0.25, random_state=SEED)
    gbc = GradientBoostingClassifier(random_state=SEED).fit(x_tr, y_tr)
    print("breast-cancer accuracy", gbc.score(x_te, y_te))
    write(ex("breast-cancer"), skl(gbc, 5, zipmap=False), x_te,
          ["meanConcavePoints", "worstRadius", "worstTexture", "worstArea", "worstConcavePoints"])
    joblib.dump(gbc, ex("breast-cancer-python") + "/clf.sav")

    # S3 (seed 000): a linear classifier on all 30 features; label 1 = malignant, as the seed's endpoint.
    y_malignant = 1 - bc.target
    x_tr, x_te, y_tr, y_te = train_test_split(bc.data, y_malignant, test_size=0.25, random_state=SEED)
    lin = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED)).fit(x_tr, y_tr)
    print("cancer-linear accuracy", lin.score(x_te, y_te))
    write(ex("cancer-linear"), skl(lin, 30, zipmap=False), x_te, [camel(n) for n in bc.feature_names])

    # S5 (seed 002): handwritten digits, 8x8 = 64 inputs (pixel intensities 0..16).
    dg = datasets.load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(dg.data, dg.target, test_size=0.25, random_state=SEED)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=SEED).fit(x_tr, y_tr)
    print("digits accuracy", mlp.score(x_te, y_te))
    write(ex("digits"), skl(mlp, 64, zipmap=False), x_te, [f"p{i}" for i in range(64)])
    write_digit_png(ex("digits-preprocess"), x_te[0], int(mlp.predict(x_te[:1])[0]))

    # XGBoost on breast cancer (onnxmltools), LightGBM on iris (ZipMap, onnxmltools default).
    import lightgbm
    import onnxmltools
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat

    x_tr, x_te, y_tr, y_te = train_test_split(bc.data, bc.target, test_size=0.25, random_state=SEED)
    xgb = xgboost.XGBClassifier(n_estimators=50, max_depth=4, random_state=SEED).fit(x_tr, y_tr)
    print("xgboost accuracy", xgb.score(x_te, y_te))
    onx = onnxmltools.convert_xgboost(xgb, initial_types=[("input", MlFloat([None, 30]))])
    write(ex("xgboost-cancer"), onx, x_te, [camel(n) for n in bc.feature_names])

    x_tr, x_te, y_tr, y_te = train_test_split(iris.data, iris.target, test_size=0.33, random_state=SEED)
    lgb = lightgbm.LGBMClassifier(n_estimators=50, random_state=SEED, verbose=-1).fit(x_tr, y_tr)
    print("lightgbm accuracy", lgb.score(x_te, y_te))
    onx = onnxmltools.convert_lightgbm(lgb, initial_types=[("input", MlFloat([None, 4]))])
    write(ex("lightgbm-iris"), onx, x_te, ["sl", "sw", "pl", "pw"])

    # A regressor: random forest on the diabetes data set (10 features).
    db = datasets.load_diabetes()
    x_tr, x_te, y_tr, y_te = train_test_split(db.data, db.target, test_size=0.25, random_state=SEED)
    rfr = RandomForestRegressor(n_estimators=50, max_depth=8, random_state=SEED).fit(x_tr, y_tr)
    print("diabetes R^2", rfr.score(x_te, y_te))
    write(ex("diabetes-regressor"), skl(rfr, 10), x_te, list(db.feature_names))


if __name__ == "__main__":
    main()
