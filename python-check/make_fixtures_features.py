#!/usr/bin/env python3
"""Fixtures for `keras-transfer features` (fixtures/features/), made by Keras 3 (tensorflow backend),
run by hand, never by the tests:

    python-check/run-venv python-check/make_fixtures_features.py

cnn.keras, cnn.h5: inputs (16, 16, 3) -> base (a nested Functional CNN: conv1, bn1, conv2, relu2, with
  seeded BatchNormalization statistics) called with training=False -> GlobalAveragePooling2D "gap" ->
  Dense(3, softmax) "head". x.npy: 4 seeded images (float32).
  cnn_<what>.npy: Model(inputs, layer.output).predict(x) for the layer `base` (by name; its output in
  the outer graph, the tensor base(inputs) gives), `gap`,
  model.layers[3] (`head`, by index: model.layers holds the InputLayer first), and the nested
  base/bn1 (Model(base.input, base.get_layer("bn1").output).predict(x)).
  layers.json: [layer.name for layer in model.layers] (what an index means).
mlp.keras, mlp.csv (4 columns a,b,c,d, 5 rows), mlp_h1.npy: a Sequential MLP's hidden layer output.
"""
import json
import os

import numpy as np
import keras
from keras import layers

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "features")
os.makedirs(OUT, exist_ok=True)
keras.utils.set_random_seed(7)
rng = np.random.default_rng(7)

b_in = keras.Input((16, 16, 3), name="base_input")
h = layers.Conv2D(4, 3, activation="relu", name="conv1")(b_in)
h = layers.BatchNormalization(name="bn1")(h)
h = layers.Conv2D(8, 3, strides=2, name="conv2")(h)
h = layers.ReLU(name="relu2")(h)
base = keras.Model(b_in, h, name="base")
bn = base.get_layer("bn1")
g, b, m, v = bn.get_weights()
bn.set_weights([
    rng.uniform(0.5, 1.5, g.shape).astype("float32"),
    rng.normal(0, 0.3, b.shape).astype("float32"),
    rng.normal(0, 0.3, m.shape).astype("float32"),
    rng.uniform(0.5, 2.0, v.shape).astype("float32"),
])
base.trainable = False
inp = keras.Input((16, 16, 3), name="image")
x = based = base(inp, training=False)
x = layers.GlobalAveragePooling2D(name="gap")(x)
out = layers.Dense(3, activation="softmax", name="head")(x)
model = keras.Model(inp, out, name="cnn")
model.save(os.path.join(OUT, "cnn.keras"))
model.save(os.path.join(OUT, "cnn.h5"))

xs = rng.uniform(0, 1, (4, 16, 16, 3)).astype("float32")
np.save(os.path.join(OUT, "x.npy"), xs)
names = [l.name for l in model.layers]
with open(os.path.join(OUT, "layers.json"), "w") as f:
    json.dump(names, f)


def sub(layer):
    return keras.Model(model.inputs, layer.output).predict(xs, verbose=0)


np.save(os.path.join(OUT, "cnn_base.npy"), keras.Model(inp, based).predict(xs, verbose=0))
np.save(os.path.join(OUT, "cnn_gap.npy"), sub(model.get_layer("gap")))
np.save(os.path.join(OUT, "cnn_index3.npy"), sub(model.layers[3]))
np.save(os.path.join(OUT, "cnn_base_bn1.npy"),
        keras.Model(base.input, base.get_layer("bn1").output).predict(xs, verbose=0))

mlp = keras.Sequential([
    keras.Input((4,)),
    layers.Dense(5, activation="relu", name="h1"),
    layers.Dense(3, activation="softmax", name="out"),
], name="mlp")
mlp.save(os.path.join(OUT, "mlp.keras"))
rows = rng.normal(0, 1, (5, 4)).astype("float32")
with open(os.path.join(OUT, "mlp.csv"), "w") as f:
    f.write("a,b,c,d\n")
    for r in rows:
        f.write(",".join(repr(float(v)) for v in r) + "\n")
np.save(os.path.join(OUT, "mlp_h1.npy"),
        keras.Model(mlp.inputs, mlp.get_layer("h1").output).predict(rows, verbose=0))
print(names, [l.name for l in mlp.layers])
