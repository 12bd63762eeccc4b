"""Fixtures for the two-phase fine-tuning recipe (fixtures/twophase/), made by real Keras 3 as the
guide "Transfer learning & fine-tuning" does it:

  base = Sequential[Dense(6, relu) "d1", BatchNormalization "bn1", Dense(5, relu) "d2",
                    BatchNormalization "bn2"] (moving statistics moved by a short SGD fit first)
  x -> base(x, training=False) -> Dense(3, softmax) "head"
  phase 1: base.trainable = False; compile(Adam(0.01)); fit(3 epochs, batch 8, shuffle=False)
  phase 2: base.trainable = True; for l in base.layers[:2]: l.trainable = False (unfreeze from "d2");
           compile(Adam(0.001)) (a NEW optimizer); fit(3 epochs, batch 8, shuffle=False)

Files: model.keras (compiled with Adam(0.01), base frozen, before phase 1), train.csv (24 rows,
3 classes), phase1.json / phase2.json (history, history.epoch, optimizer iterations, every weight
per flattened layer after the phase), facts.json (what Keras does between the phases).

Run: python-check/run-venv python-check/make_fixtures_twophase.py
"""

import json
import shutil

import numpy as np

from common import FIXTURES, keras3, write_csv, write_json
from make_fixtures_nested import flat_layers, layer_weights

ROWS = 24


def main():
    k = keras3()
    k.backend.clear_session()
    k.utils.set_random_seed(2024)
    rng = np.random.default_rng(2024)
    d = FIXTURES / "twophase"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    L = k.layers
    base = k.Sequential([k.Input((4,)), L.Dense(6, activation="relu", name="d1"),
                         L.BatchNormalization(momentum=0.9, name="bn1"),
                         L.Dense(5, activation="relu", name="d2"),
                         L.BatchNormalization(momentum=0.9, name="bn2")], name="base")
    x_in = k.Input((4,), name="x")
    out = L.Dense(3, activation="softmax", name="head")(base(x_in, training=False))
    model = k.Model(x_in, out, name="outer")
    x = rng.normal(size=(ROWS, 4)).round(3)
    y = rng.integers(0, 3, size=ROWS)
    onehot = np.eye(3)[y]
    # Move the moving statistics away from their initial values ("pretrained" base).
    model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.SGD(0.05))
    model.fit(x, onehot, epochs=2, batch_size=8, shuffle=False, verbose=0)
    base.trainable = False
    model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.Adam(0.01), metrics=["accuracy"])
    model.save(d / "model.keras")
    write_csv(d / "train.csv", [f"x{i}" for i in range(4)] + ["label"],
              [list(r) + [int(c)] for r, c in zip(x, y)])
    (d / "SOURCE").write_text(f"python-check/make_fixtures_twophase.py (keras {k.__version__})\n")

    m = k.models.load_model(d / "model.keras")
    h1 = m.fit(x, onehot, epochs=3, batch_size=8, shuffle=False, verbose=0)
    it1 = int(m.optimizer.iterations.numpy())
    write_json(d / "phase1.json", {"history": h1.history, "epoch": h1.epoch, "iterations": it1,
                                   "weights": layer_weights(m)})
    opt1 = m.optimizer
    mb = m.get_layer("base")
    mb.trainable = True
    # After load_model, Keras 3.15 reports base.trainable True while its layers are False, so the
    # setter above thaws nothing (measured): thaw the layers one by one, as the guide means.
    for layer in mb.layers:
        layer.trainable = True
    for layer in mb.layers[:2]:
        layer.trainable = False
    m.compile(loss="categorical_crossentropy", optimizer=k.optimizers.Adam(0.001), metrics=["accuracy"])
    h2 = m.fit(x, onehot, epochs=3, batch_size=8, shuffle=False, verbose=0)
    write_json(d / "phase2.json", {"history": h2.history, "epoch": h2.epoch,
                                   "iterations": int(m.optimizer.iterations.numpy()),
                                   "weights": layer_weights(m)})
    write_json(d / "facts.json", {
        "new_optimizer_after_recompile": m.optimizer is not opt1,
        "phase2_iterations": int(m.optimizer.iterations.numpy()),
        "phase2_epochs_restart_at_0": h2.epoch[0] == 0,
        "new_history_object": h2 is not h1,
        "trainable_after": [l.name for l in flat_layers(m) if l.trainable],
    })
    for p in sorted(d.rglob("*")):
        print(p.relative_to(FIXTURES), p.stat().st_size)
    print(json.dumps(json.loads((d / "facts.json").read_text())))


if __name__ == "__main__":
    main()
