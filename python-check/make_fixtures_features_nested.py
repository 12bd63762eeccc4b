"""Keras's outputs of layers two levels deep, for `features --layer base/stem[/layer]` (issue 21).

Reads fixtures/keras_convnext/mini/model.keras (image -> convnext_mini (Functional, holding the
Sequential convnext_mini_stem) -> pool -> head) and its x.npy, and writes to fixtures/features/:
  convnext_stem.npy       Model(base.input, base.get_layer("convnext_mini_stem").output).predict(x)
  convnext_stem_conv.npy  the stem's first layer, convnext_mini_stem_conv: the base's layers before
                          the stem (its prestem Normalization), then that layer called on their output.
Run: python-check/run-venv python-check/make_fixtures_features_nested.py
"""
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "fixtures", "keras_convnext", "mini")
OUT = os.path.join(HERE, "..", "fixtures", "features")

model = keras.models.load_model(os.path.join(SRC, "model.keras"))
x = np.load(os.path.join(SRC, "x.npy"))
base = model.get_layer("convnext_mini")
stem = base.get_layer("convnext_mini_stem")
np.save(os.path.join(OUT, "convnext_stem.npy"),
        keras.Model(base.input, stem.output).predict(x, verbose=0))
prestem = keras.Model(base.input, base.get_layer("convnext_mini_prestem_normalization").output)
conv = stem.get_layer("convnext_mini_stem_conv")
np.save(os.path.join(OUT, "convnext_stem_conv.npy"),
        keras.ops.convert_to_numpy(conv(prestem.predict(x, verbose=0))))
print("wrote", OUT)
