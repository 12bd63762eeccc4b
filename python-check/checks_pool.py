"""Check group p: Keras 3 (and tf.keras 2 for the Keras-2-style file) loads the pooling and shape-layer
models keras-transfer writes (fixtures/keras_pool/train_*, converted by the binary) and predicts what
keras-transfer predicts."""

import numpy as np

from common import REPO, max_abs_diff, read_float_csv

TOL = 1e-6


def _case_in_keras(ctx, case, ext, fmt, k):
    src = REPO / "fixtures" / "keras_pool" / case
    out = ctx.workdir / f"p-{case}-{fmt}.{ext}"
    ctx.rust.run("convert", src / "model.keras", out, *(["--format", fmt] if ext == "h5" else []))
    _, rows = read_float_csv(src / "train.csv")
    X = rows[:, :-1]
    model = k.models.load_model(str(out), compile=False)
    shape = (len(X),) + tuple(model.inputs[0].shape[1:])
    diff = max_abs_diff(model.predict(X.reshape(shape).astype(np.float32), verbose=0), ctx.rust.predict(out, X))
    if diff > TOL:
        raise AssertionError(f"Keras vs Rust predictions differ by {diff:.3g} > {TOL}")
    return f"max|dp| {diff:.2g}"


def checks(ctx, k3, k2):
    out = []
    for i, case in enumerate(["train_2d", "train_1d", "train_global"], start=1):
        out += [
            (f"p{i}a rust {case} .keras -> keras 3", lambda c=case: _case_in_keras(ctx, c, "keras", "keras3", k3)),
            (f"p{i}b rust {case} keras3 .h5 -> keras 3", lambda c=case: _case_in_keras(ctx, c, "h5", "keras3", k3)),
            (f"p{i}c rust {case} universal .h5 -> tf_keras 2",
             lambda c=case: _case_in_keras(ctx, c, "h5", "universal", k2)),
        ]
    return out
