"""Group x of check.py: the element-wise and normalisation layers (fixtures/keras_elem, made by
make_fixtures_elem.py). Rust converts each Keras-made model; Keras 3 (and tf.keras 2 for the universal
.h5 of the cases it has the layers for) loads Rust's file and predicts what the Keras-made model did."""

import numpy as np

from common import REPO

TOL = 1e-5
# Keras 3 cases, and whether tf.keras 2 has every layer and activation of the case.
K3_CASES = {"elementwise": False, "activations": False, "normalization": True, "norm_image": True,
            "embedding": True, "layer_scale": False, "bn_image": True}
K2_CASES = ["k2_layers", "k2_image", "k2_embedding"]


class Failed(Exception):
    pass


def via_rust(ctx, k, case, src_name, out_name, fmt=None):
    d = REPO / "fixtures" / "keras_elem" / case
    X = np.loadtxt(d / "inputs.csv", delimiter=",", skiprows=1, ndmin=2)
    want = np.loadtxt(d / "predictions.csv", delimiter=",", skiprows=1, ndmin=2)
    out = ctx.workdir / f"x_{case}_{out_name}"
    ctx.rust.run("convert", d / src_name, out, *(["--format", fmt] if fmt else []))
    m = k.models.load_model(str(out), compile=False)
    shape = tuple(d for d in m.inputs[0].shape[1:])
    got = m.predict(X.reshape((len(X),) + shape).astype("float32"), verbose=0)
    diff = float(np.max(np.abs(got - want)))
    if not diff <= TOL:
        raise Failed(f"{case}: Keras on Rust's {out_name} differs from the Keras-made model by {diff:.3g}")
    return f"max|dp| {diff:.2g}"


def checks(ctx, k3, k2):
    out = []
    for case, universal in K3_CASES.items():
        out.append((f"x {case} .keras -> rust .keras -> keras 3",
                    lambda c=case: via_rust(ctx, k3, c, "model.keras", "model.keras")))
        out.append((f"x {case} .keras -> rust keras3 .h5 -> keras 3",
                    lambda c=case: via_rust(ctx, k3, c, "model.keras", "model.h5", "keras3")))
        if universal:
            out.append((f"x {case} .keras -> rust universal .h5 -> tf_keras 2",
                        lambda c=case: via_rust(ctx, k2, c, "model.keras", "u.h5", "universal")))
    for case in K2_CASES:
        out.append((f"x {case} .h5 -> rust universal .h5 -> tf_keras 2",
                    lambda c=case: via_rust(ctx, k2, c, "model.h5", "u.h5", "universal")))
        out.append((f"x {case} .h5 -> rust .keras -> keras 3",
                    lambda c=case: via_rust(ctx, k3, c, "model.h5", "model.keras")))
    return out
