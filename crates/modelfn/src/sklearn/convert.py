"""Converts a scikit-learn pickle to ONNX and checks that both answer alike.

Run by `modelfn deploy` for `runtime = "sklearn"`, in modelfn's converter environment:
    python convert.py REQUEST.json
REQUEST: {"model": path, "out": path, "inputs": n, "rows": path-or-null, "count": n}
Prints one JSON object: {"ok": true, ...a summary...} or {"ok": false, "reason": ...,
"rows": [...the rows that differ, with both answers...]}. A pickle of an XGBoost or
LightGBM estimator (their scikit-learn interfaces) is converted with onnxmltools; when
their packages are missing the answer is {"ok": false, "needs": "xgboost"|"lightgbm"}
and modelfn installs them (pinned) and runs this again.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")


def answer(obj):
    print(json.dumps(obj))
    sys.exit(0)


def load(path):
    import joblib
    try:
        return joblib.load(path)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top in ("xgboost", "lightgbm"):
            answer({"ok": False, "needs": top, "reason": "the pickle needs %s" % top})
        answer({"ok": False, "reason": "the pickle needs the module %r, which the converter does not have: "
                "scikit-learn, XGBoost and LightGBM estimators are converted; serve others with "
                "runtime = \"python3\"" % e.name})
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the user's to see
        answer({"ok": False, "reason": "could not load the pickle: %s: %s (was it made with scikit-learn %s?)"
                % (type(e).__name__, e, sklearn_version())})


def sklearn_version():
    import sklearn
    return sklearn.__version__


def ranges(model, n):
    """Per-feature (low, high) from what the estimator stored, and where they came from."""
    import numpy as np
    lows = np.full(n, np.inf)
    highs = np.full(n, -np.inf)
    found = []

    def trees(est):
        out = [est.tree_] if hasattr(est, "tree_") else []
        subs = getattr(est, "estimators_", None)
        if subs is not None:
            # A list (forests) or an array of them (gradient boosting: stages by class).
            for sub in np.asarray(subs, dtype=object).ravel():
                out.extend(trees(sub))
        return out

    steps = [s for _, s in model.steps] if hasattr(model, "steps") else [model]
    first = steps[0]
    for attr_lo, attr_hi in (("data_min_", "data_max_"),):
        if hasattr(first, attr_lo):
            lows = np.minimum(lows, getattr(first, attr_lo))
            highs = np.maximum(highs, getattr(first, attr_hi))
            found.append("the scaler's data range")
    if not found and hasattr(first, "mean_") and (hasattr(first, "scale_") or hasattr(first, "var_")):
        scale = getattr(first, "scale_", None)
        if scale is None:
            scale = np.sqrt(first.var_)
        lows = np.minimum(lows, first.mean_ - 3 * scale)
        highs = np.maximum(highs, first.mean_ + 3 * scale)
        found.append("the scaler's mean and scale (3 sigma)")
    if not found:
        for f, thr in booster_splits(steps[-1]):
            if 0 <= f < n:
                lows[f] = min(lows[f], thr)
                highs[f] = max(highs[f], thr)
    if not found:
        for t in trees(steps[-1]):
            for f, thr in zip(t.feature, t.threshold):
                if f >= 0:
                    lows[f] = min(lows[f], thr)
                    highs[f] = max(highs[f], thr)
        if np.isfinite(lows).any():
            found.append("the trees' split thresholds")
    unknown = ~np.isfinite(lows) | ~np.isfinite(highs)
    lows[unknown] = -1.0
    highs[unknown] = 1.0
    span = np.maximum(highs - lows, 1e-3)
    return lows - 0.1 * span, highs + 0.1 * span, found or ["none stored: -1 to 1"]


def family(model):
    """Which library made the estimator: sklearn, xgboost or lightgbm."""
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    return type(est).__module__.split(".")[0], est is not model


def booster_splits(est):
    """(feature, threshold) of every split of an XGBoost or LightGBM model."""
    kind = type(est).__module__.split(".")[0]
    out = []
    if kind == "xgboost":
        booster = est.get_booster()
        names = booster.feature_names or []

        def walk(node):
            if "split" in node:
                f = node["split"]
                idx = names.index(f) if f in names else int(f[1:]) if f[:1] == "f" and f[1:].isdigit() else -1
                out.append((idx, float(node["split_condition"])))
                for child in node.get("children", []):
                    walk(child)

        for text in booster.get_dump(dump_format="json"):
            walk(json.loads(text))
    elif kind == "lightgbm":
        def walk(node):
            if "split_feature" in node:
                out.append((int(node["split_feature"]), float(node["threshold"])))
                walk(node["left_child"])
                walk(node["right_child"])

        for tree in est.booster_.dump_model()["tree_info"]:
            walk(tree["tree_structure"])
    return out


def to_onnx_model(model, n, classifier):
    """The ONNX model and the converter's name, or answers why it cannot be converted."""
    kind, in_pipeline = family(model)
    if kind in ("xgboost", "lightgbm"):
        if in_pipeline:
            answer({"ok": False, "reason": "a pipeline ending in a %s estimator is not converted: deploy the "
                    "estimator alone, or serve the pipeline with runtime = \"python3\"" % kind})
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
        types = [("input", MlFloat([None, n]))]
        try:
            if kind == "xgboost":
                onx = onnxmltools.convert_xgboost(model, initial_types=types)
            else:
                onx = onnxmltools.convert_lightgbm(model, initial_types=types, zipmap=False)
        except Exception as e:  # noqa: BLE001 - the converter's reason is the answer
            answer({"ok": False, "reason": "onnxmltools cannot convert %s: %s: %s. Serve it with runtime = "
                    "\"python3\" and a handler instead" % (type(model).__name__, type(e).__name__, e)})
        return onx, "onnxmltools %s (%s %s)" % (onnxmltools.__version__, kind, __import__(kind).__version__)
    import skl2onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    try:
        onx = to_onnx(model, initial_types=[("input", FloatTensorType([None, n]))],
                      target_opset={"": 17, "ai.onnx.ml": 3},
                      options={id(model): {"zipmap": False}} if classifier else None)
    except Exception as e:  # noqa: BLE001 - the converter's reason is the answer
        answer({"ok": False, "reason": "skl2onnx cannot convert %s: %s: %s. Serve it with runtime = \"python3\" "
                "and a handler instead (as examples/iris-python does)" % (type(model).__name__, type(e).__name__, e)})
    return onx, "skl2onnx %s" % skl2onnx.__version__


def main():
    req = json.load(open(sys.argv[1]))
    import numpy as np
    import onnxruntime as ort

    model = load(req["model"])
    n = int(req["inputs"])
    expected = getattr(model, "n_features_in_", n)
    if expected != n:
        answer({"ok": False, "reason": "the model takes %d features, the manifest names %d inputs" % (expected, n)})
    classifier = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    onx, converter = to_onnx_model(model, n, classifier)
    with open(req["out"], "wb") as f:
        f.write(onx.SerializeToString())

    if req.get("rows"):
        rows = np.loadtxt(req["rows"], delimiter=",", dtype=np.float64, ndmin=2)
        source = "the given rows (%s)" % req["rows_name"]
        if rows.shape[1] != n:
            answer({"ok": False, "reason": "the sample rows have %d columns, the model %d" % (rows.shape[1], n)})
    else:
        lo, hi, found = ranges(model, n)
        rng = np.random.default_rng(0)
        rows = rng.uniform(lo, hi, size=(int(req["count"]), n))
        source = "%d random rows within %s" % (len(rows), ", ".join(found))
    # Both see the same float32 values: the ONNX model takes float32.
    rows = rows.astype(np.float32)
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input": rows})
    bad = []
    if classifier:
        want_labels = model.predict(rows)
        want_probs = model.predict_proba(rows)
        got_labels, got_probs = outs[0], outs[1]
        diff = np.abs(want_probs - got_probs).max(axis=1)
        for i in range(len(rows)):
            if str(want_labels[i]) != str(got_labels[i]) or diff[i] > 1e-5:
                bad.append({"row": rows[i].tolist(), "scikit-learn": {"label": str(want_labels[i]),
                            "probabilities": want_probs[i].tolist()},
                            "onnx": {"label": str(got_labels[i]), "probabilities": got_probs[i].tolist()}})
        worst = float(diff.max())
        kind = "classifier"
    else:
        want = np.asarray(model.predict(rows), dtype=np.float64).reshape(len(rows), -1)
        got = np.asarray(outs[0], dtype=np.float64).reshape(len(rows), -1)
        diff = (np.abs(want - got) / np.maximum(1.0, np.abs(want))).max(axis=1)
        for i in range(len(rows)):
            if diff[i] > 1e-5:
                bad.append({"row": rows[i].tolist(), "scikit-learn": want[i].tolist(), "onnx": got[i].tolist()})
        worst = float(diff.max())
        kind = "regressor"
    summary = {"estimator": type(model).__name__, "kind": kind, "rows": len(rows), "rows_from": source,
               "worst_difference": worst, "converter": converter,
               "scikit_learn": sklearn_version()}
    if bad:
        summary.update({"ok": False, "reason": "%d of %d rows answer differently (labels, or probabilities by more "
                        "than 1e-5)" % (len(bad), len(rows)), "differing": bad[:5]})
        answer(summary)
    summary["ok"] = True
    answer(summary)


main()
