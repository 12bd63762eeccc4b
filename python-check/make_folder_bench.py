"""Writes the image folder and models that docs/data-images.md's streaming measurements use.

Usage: python-check/run-venv python-check/make_folder_bench.py OUT_DIR [N_IMAGES]
Then, in OUT_DIR:
  /usr/bin/time -v keras-transfer finetune --from gap.keras --train folder --epochs 10 \
      --batch-size 32 --validation-split 0.2 [--cache off]
  /usr/bin/time -v keras-transfer finetune --from conv.keras --train folder --freeze 2 --epochs 5 \
      --then-epochs 5 --then-unfreeze conv --batch-size 32 --validation-split 0.2 --out tp.keras
  /usr/bin/time -v keras-transfer evaluate --model tp.keras --data folder
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
size = 64
os.makedirs(out, exist_ok=True)
for i in range(n):
    d = os.path.join(out, "folder", "abc"[i % 3])
    os.makedirs(d, exist_ok=True)
    j = np.arange(size * size * 3)
    px = ((j * 31 + i * 17 + (i % 3) * j // 7) % 251).astype(np.uint8).reshape(size, size, 3)
    with open(os.path.join(d, f"{i:05}.png"), "wb") as f:
        f.write(tf.io.encode_png(px).numpy())


def save(name, first):
    inp = keras.Input((size, size, 3), name="image")
    x = first(inp) if first else inp
    x = keras.layers.GlobalAveragePooling2D()(x)
    out_ = keras.layers.Dense(3, activation="softmax", name="head")(x)
    m = keras.Model(inp, out_)
    m.compile(
        optimizer=keras.optimizers.SGD(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    m.save(os.path.join(out, name))


save("gap.keras", None)
save("conv.keras", keras.layers.Conv2D(4, 3, strides=2, name="conv"))
