"""Check group v: convolutions (fixtures/keras_conv) both ways. Keras 3 loads what keras-transfer writes
of the Keras-made CNNs (.keras, keras3 .h5, universal .h5; tf.keras 2 the universal .h5 of its own
CNN) and predicts what Keras predicted; keras-transfer's own `predict` on the images agrees; a Rust
fine-tune (`finetune --epochs 2`) of the 2-D CNN loads in Keras 3 and predicts like Rust.
"""

import numpy as np

from common import REPO, max_abs_diff

CASES = REPO / "fixtures" / "keras_conv"
TOL = 1e-5


def _images(case, shape):
    rows = np.loadtxt(CASES / case / "train.csv", delimiter=",", skiprows=1)
    return rows[:, :-1], rows[:, :-1].reshape((len(rows),) + shape)


def compare(what, got, want, tol):
    d = max_abs_diff(got, want)
    if not d <= tol:
        raise AssertionError(f"{what}: max |diff| {d:.3g} > {tol}")
    return d


def checks(ctx, k3, k2):
    def via_rust(k, case, shape, out_name, fmt):
        src = CASES / case / ("model.keras" if (CASES / case / "model.keras").exists() else "model.h5")
        flat, X = _images(case, shape)
        want = np.loadtxt(CASES / case / "predictions.csv", delimiter=",", skiprows=1)
        out = ctx.workdir / f"conv_{case}_{out_name}"
        ctx.rust.run("convert", src, out, *(["--format", fmt] if fmt else []))
        m = k.models.load_model(str(out))
        diff = compare(f"{out_name} in Keras vs the Keras-made model", m.predict(X, verbose=0), want, tol=TOL)
        rust = compare("rust predict vs Keras", ctx.rust.predict(src, flat), want, tol=TOL)
        return f"max|dp| {diff:.2g} (Keras on Rust's file), {rust:.2g} (Rust predict)"

    def finetuned():
        case = CASES / "cnn2d"
        flat, X = _images("cnn2d", (6, 7, 3))
        out = ctx.workdir / "conv_cnn2d_ft.keras"
        ctx.rust.run("finetune", "--from", case / "model.keras", "--train", case / "train.csv",
                     "--epochs", 2, "--out", out, "--seed", 3)
        m = k3.models.load_model(str(out))
        diff = compare("Keras vs Rust on Rust's fine-tuned CNN", m.predict(X, verbose=0),
                       ctx.rust.predict(out, flat), tol=TOL)
        return f"max|dp| {diff:.2g}"

    return [
        ("v1 keras 3 cnn2d -> rust .keras -> keras 3", lambda: via_rust(k3, "cnn2d", (6, 7, 3), "out.keras", None)),
        ("v2 keras 3 cnn2d -> rust keras3 .h5 -> keras 3", lambda: via_rust(k3, "cnn2d", (6, 7, 3), "k3.h5", "keras3")),
        ("v3 keras 3 cnn1d -> rust universal .h5 -> keras 3", lambda: via_rust(k3, "cnn1d", (12, 2), "u.h5", "universal")),
        ("v4 tf_keras 2 k2_cnn -> rust universal .h5 -> tf_keras 2", lambda: via_rust(k2, "k2_cnn", (6, 7, 3), "u.h5", "universal")),
        ("v5 rust finetune of keras 3 cnn2d -> keras 3 predicts like rust", finetuned),
    ]
