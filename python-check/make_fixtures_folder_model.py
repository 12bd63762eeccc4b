#!/usr/bin/env python3
"""Regenerates fixtures/images/model/ (run by hand, never by the tests): a Keras 3 model whose input is
an image, on the image folder fixtures/images/folder, as `image_dataset_from_directory` reads it.

    python-check/run-venv python-check/make_fixtures_folder_model.py

The model: Input(6, 5, 3) -> Flatten -> Dense(3, softmax), seeded, compiled with Adam(0.01),
sparse_categorical_crossentropy and accuracy, saved (never fitted) as model.keras and model.h5.
case.json: the folder's class names and files (shuffle=False), Keras's predict on them, evaluate's
[loss, accuracy], and the weights after fit(epochs=3, shuffle=False) on the folder read with
batch_size=4 (load_model("model.keras") first, as a user continues a saved model).
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from common import versions

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDER = ROOT / "fixtures/images/folder"
OUT = ROOT / "fixtures/images/model"
H, W, C, BATCH, EPOCHS = 6, 5, 3, 4, 3


def main():
    import keras
    keras.utils.set_random_seed(7)
    inputs = keras.Input((H, W, C), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="head",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=3))(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    OUT.mkdir(parents=True, exist_ok=True)
    model.save(OUT / "model.keras")
    model.save(OUT / "model.h5")

    def data():
        return keras.utils.image_dataset_from_directory(
            FOLDER, image_size=(H, W), batch_size=BATCH, shuffle=False)
    ds = data()
    files = [str(pathlib.Path(p).relative_to(FOLDER)) for p in ds.file_paths]
    predict = model.predict(ds, verbose=0)
    loss, acc = model.evaluate(data(), verbose=0)
    fitted = keras.models.load_model(OUT / "model.keras")
    fitted.fit(data(), epochs=EPOCHS, shuffle=False, verbose=0)
    kernel, bias = fitted.get_layer("head").get_weights()
    case = {
        "class_names": ds.class_names,
        "files": files,
        "predict": predict.astype(np.float64).tolist(),
        "evaluate": [float(loss), float(acc)],
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "fitted_kernel": kernel.astype(np.float64).ravel().tolist(),
        "fitted_bias": bias.astype(np.float64).tolist(),
    }
    (OUT / "case.json").write_text(json.dumps(case, indent=1) + "\n")
    (OUT / "SOURCE").write_text(
        f"python-check/make_fixtures_folder_model.py ({versions('keras', 'tensorflow-cpu', 'numpy', 'h5py')})\n")


if __name__ == "__main__":
    main()
