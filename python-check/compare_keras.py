"""The tutorial's repeated comparison done by real Keras 3, from the same Keras-made model.h5 that
keras-transfer's `compare` can start from, to set the two distributions side by side. Slow (about
8 s a fit here), so it is not part of the test command:

    python-check/run-venv python-check/compare_keras.py [REPEATS=10] [MODEL=fixtures/keras_finetune/model.h5]
    target/release/keras-transfer compare --from fixtures/keras_finetune/model.h5 --problem 2

It prints the tutorial's lines (mean and population std of test accuracy on Problem 2) and writes
every score to compare_keras.json in the current folder."""
import json
import pathlib
import sys
import time

import numpy as np

from common import COMPILE, TUTORIAL_LAYERS, blobs_problem, build_mlp, keras3

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv):
    repeats = int(argv[0]) if argv else 10
    model = pathlib.Path(argv[1]) if len(argv) > 1 else ROOT / "fixtures/keras_finetune/model.h5"
    k = keras3()
    trX, trY, teX, teY = blobs_problem(2)
    scores, start = {}, time.time()
    for arm in ("Standalone", 0, 1, 2):
        accs = []
        for r in range(repeats):
            k.utils.set_random_seed(1000 + r)
            if arm == "Standalone":
                m = build_mlp(k, 2, TUTORIAL_LAYERS)
            else:
                m = k.models.load_model(str(model))
                for i in range(arm):
                    m.layers[i].trainable = False
            m.compile(**COMPILE)
            m.fit(trX, trY, epochs=100, verbose=0)
            accs.append(float(m.evaluate(teX, teY, verbose=0)[1]))
        title = arm if arm == "Standalone" else f"Transfer (fixed={arm})"
        scores[title] = accs
        print(f"{title} {np.mean(accs):.3f} ({np.std(accs):.3f})   [{time.time() - start:.0f} s]", flush=True)
    pathlib.Path("compare_keras.json").write_text(json.dumps({"model": str(model), "repeats": repeats, "scores": scores}))


if __name__ == "__main__":
    main(sys.argv[1:])
