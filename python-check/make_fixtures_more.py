#!/usr/bin/env python3
"""Regenerates fixtures/keras_layers/ and fixtures/keras_compile/ (run by hand, never by the tests).

    python-check/run-venv python-check/make_fixtures_more.py [GROUP ...]

GROUP is keras_layers or keras_compile (default: both). About 2-3 minutes on two cores.

keras_layers: every kind of Keras MLP file a user has (Dropout, BatchNormalization, LayerNormalization,
Activation/LeakyReLU/Flatten layers, more activations, Functional models, float64, tf.keras 2), each as
model.keras + model.h5 + model.weights.h5 with 20 predictions, plus one BatchNormalization training
epoch (batchnorm_train). keras_compile: a 4 -> 6 -> k MLP compiled with one optimizer / loss /
regulariser each and fitted 20 epochs with shuffle off; the optimizer state after it, and one more
epoch from the saved fitted.keras.

Every case folder gets a one-line SOURCE file naming this script, the function and the package
versions, and a case.json that describes everything a test needs without Python. Floats are
written as repr(float(v)): the shortest round-trip text of the double (of the exact double value
for float32 numbers). Paths in case.json are relative (archive members, HDF5 object names).

Byte-identical reruns: Keras writes the save time into a .keras archive (metadata.json
"date_saved" and the zip time of model.weights.h5) and memory addresses into its config.json
("shared_object_id"); while saving, this script pins the clock to SAVE_TIME and numbers those ids
in order of first sight (pinned_save_time), so the archives do not change from run to run either.
"""

import builtins
import contextlib
import datetime
import io
import json
import shutil
import sys
import time
import types
import zipfile

import h5py
import numpy as np

from common import FIXTURES, keras2, keras3, one_hot, p_header, random_inputs, versions, write_csv, x_header

SCRIPT = "python-check/make_fixtures_more.py"
KERAS3_VERSIONS = ("keras", "tensorflow-cpu", "numpy", "h5py")
KERAS2_VERSIONS = ("tf-keras", "tensorflow-cpu", "numpy", "h5py")
INPUT_ROWS = 20
SAVE_TIME = (2000, 1, 1, 0, 0, 0)  # the pinned clock of every .keras archive written here
SHARED_ID_BASE = 139_990_000_000_000  # pinned "shared_object_id" values (see pinned_save_time)


# =========================================================================== helpers

def case_dir(group, case=None):
    """A fresh (emptied) fixtures/GROUP/CASE folder, or fixtures/GROUP itself without CASE."""
    d = FIXTURES / group if case is None else FIXTURES / group / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def fresh_sessions(*ks):
    """Resets Keras's global state (layer-name counters), so that layer names (dense, dense_1, ...)
    do not depend on what ran before in the same process."""
    for k in ks:
        k.backend.clear_session()


def write_source(d, function, dists):
    (d / "SOURCE").write_text(f"{SCRIPT}:{function} ({versions(*dists)})\n")


def write_case_json(d, obj, width=160):
    """case.json: indented, but any object or list whose one-line JSON fits in `width` characters
    (and every list of numbers or of number rows) stays on one line: small, diffable, readable."""
    def numeric(v):
        return isinstance(v, list) and all(isinstance(x, (int, float)) or numeric(x) for x in v)

    def dump(v, depth):
        flat = json.dumps(v)
        if not isinstance(v, (dict, list)) or len(flat) + depth <= width or numeric(v):
            return flat
        pad = " " * depth
        if isinstance(v, dict):
            items = [f"{pad} {json.dumps(key)}: {dump(val, depth + 1)}" for key, val in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        items = [f"{pad} {dump(x, depth + 1)}" for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"

    (d / "case.json").write_text(dump(jsonable(obj), 0) + "\n")


def jsonable(v):
    """numpy scalars/arrays, bytes, tuples -> plain JSON values (floats stay exact doubles)."""
    if isinstance(v, dict):
        return {str(key): jsonable(val) for key, val in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OSU":
            return [jsonable(x) for x in v.tolist()]
        if v.dtype.kind == "f":
            return v.astype(np.float64).tolist()
        return v.tolist()
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, float) and not np.isfinite(v):
        return repr(v)
    return v


def values(x):
    """A tensor/variable/array as nested lists of exact doubles (ints stay ints)."""
    a = np.asarray(x)
    return a.astype(np.float64).tolist() if a.dtype.kind == "f" else a.tolist()


@contextlib.contextmanager
def pinned_save_time():
    """Makes Keras's archives reproducible, without changing what they mean:
    - saving_lib stamps metadata.json with datetime.now() and zipfile.writestr stamps the
      model.weights.h5 member with time.time(): both are pinned to SAVE_TIME;
    - serialization_lib marks an object met twice in config.json with "shared_object_id": id(obj),
      a memory address: the ids are replaced, one to one, by SHARED_ID_BASE + 16 n in order of
      first sight (numbers of the same size as CPython's addresses)."""
    import keras.src.saving.saving_lib as k3_saving
    import keras.src.saving.serialization_lib as k3_serialization

    time_modules, id_modules = [k3_saving], [k3_serialization]
    try:
        import tf_keras.src.saving.saving_lib as k2_saving
        import tf_keras.src.saving.serialization_lib as k2_serialization

        time_modules.append(k2_saving)
        id_modules.append(k2_serialization)
    except ImportError:
        pass

    class PinnedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(*SAVE_TIME)

    seen = {}

    def stable_id(obj):
        return seen.setdefault(builtins.id(obj), SHARED_ID_BASE + 16 * len(seen))

    fake_datetime = types.SimpleNamespace(datetime=PinnedDatetime)
    fake_time = types.SimpleNamespace(time=lambda: 0.0, localtime=lambda *a: SAVE_TIME + (0, 1, 0))
    saved_time = zipfile.time
    try:
        for m in time_modules:
            m.datetime = fake_datetime
        for m in id_modules:
            m.id = stable_id  # shadows the builtin inside that module only
        zipfile.time = fake_time
        yield
    finally:
        for m in time_modules:
            m.datetime = datetime
        for m in id_modules:
            del m.id
        zipfile.time = saved_time


def h5_attr(obj, name):
    aid = obj.attrs.get_id(name)
    dt = aid.dtype
    entry = {}
    s = h5py.check_string_dtype(dt)
    if s is not None:
        entry["dtype"] = "string"
        entry["string"] = {"encoding": s.encoding, "length": s.length}  # length null: variable-length
    else:
        entry["dtype"] = str(dt)
    entry["shape"] = list(aid.shape) if aid.shape is not None else None
    entry["value"] = jsonable(obj.attrs[name])
    return entry


LAYOUTS = {h5py.h5d.COMPACT: "compact", h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked"}


def h5_tree(f):
    """Every group and dataset of an open h5py File, in h5py's iteration order (names sorted as
    strings: vars/10 comes before vars/2), with shapes, dtypes, storage layout and attributes."""
    out = [{"path": "/", "kind": "group", "attrs": {n: h5_attr(f, n) for n in f.attrs}}]

    def visit(name, obj):
        entry = {"path": name}
        if isinstance(obj, h5py.Dataset):
            entry.update(kind="dataset", shape=list(obj.shape), dtype=str(obj.dtype),
                         layout=LAYOUTS.get(obj.id.get_create_plist().get_layout(), "other"))
        else:
            entry["kind"] = "group"
        entry["attrs"] = {n: h5_attr(obj, n) for n in obj.attrs}
        out.append(entry)

    f.visititems(visit)
    return out


def h5_file_tree(path):
    with h5py.File(path, "r") as f:
        return h5_tree(f)


def h5_training_attrs(path):
    """The root attributes of a legacy model.h5 that carry the compile settings, as text."""
    with h5py.File(path, "r") as f:
        return {"root_attrs": sorted(f.attrs), "keras_version": jsonable(f.attrs["keras_version"]),
                "backend": jsonable(f.attrs["backend"]),
                "training_config": jsonable(f.attrs["training_config"]) if "training_config" in f.attrs else None,
                "optimizer_weights": "optimizer_weights" in f,
                "tree": "omitted: the layout is the one of fixtures/keras_layers/*/model.h5 (see case.json there)"}


def keras_archive(path):
    """Listing of a .keras zip, its config.json / metadata.json text and the tree of its model.weights.h5."""
    with zipfile.ZipFile(path) as z:
        members = [{"name": i.filename, "file_size": i.file_size, "compress_size": i.compress_size,
                    "compress_type": i.compress_type, "date_time": list(i.date_time)} for i in z.infolist()]
        names = [i.filename for i in z.infolist()]
        out = {"members": members,
               "metadata_json": z.read("metadata.json").decode() if "metadata.json" in names else None,
               "config_json": z.read("config.json").decode() if "config.json" in names else None}
        if "model.weights.h5" in names:
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                out["weights_h5_tree"] = h5_tree(f)
    return out


def layer_config(layer):
    try:
        return jsonable(layer.get_config())
    except Exception as e:  # pragma: no cover - only for layers without a config
        return f"get_config failed: {e!r}"


def keras_vars_order(layer):
    """The order in which Keras 3 writes a layer's variables as vars/0, vars/1, ...
    (Layer.save_own_variables: trainable variables, then non-trainable ones)."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def describe_layers(model, weights_h5=None, legacy_h5=None, keras2_model=False):
    """Per layer: class, name, config, and every variable with its values and where it is stored in
    model.weights.h5 / model.keras (layers/<name>/vars/<i>) and in model.h5
    (model_weights/<layer>/<weight name>). Every location is checked against the written file."""
    out = []
    wf = h5py.File(weights_h5, "r") if weights_h5 else None
    lf = h5py.File(legacy_h5, "r") if legacy_h5 else None
    try:
        for layer in model.layers:
            entry = {"class_name": layer.__class__.__name__, "name": layer.name, "config": layer_config(layer),
                     "weights": []}
            # tf.keras 2 writes trainable_weights + non_trainable_weights (checked against the file below)
            order = (list(layer.trainable_weights) + list(layer.non_trainable_weights) if keras2_model
                     else keras_vars_order(layer))
            assert {id(v) for v in order} == {id(v) for v in layer.weights}, layer.name
            for v in layer.weights:
                w = {"name": v.name.split("/")[-1].split(":")[0], "path": getattr(v, "path", v.name),
                     "shape": list(v.shape), "dtype": str(np.asarray(v).dtype), "trainable": bool(v.trainable),
                     "values": values(v)}
                w["keras_vars_index"] = [id(x) for x in order].index(id(v))
                loc = f"layers/{layer.name}/vars/{w['keras_vars_index']}"
                if wf is not None:
                    assert np.array_equal(np.asarray(wf[loc]), np.asarray(v)), loc
                    w["weights_h5_dataset"] = loc
                if lf is not None:
                    names = [jsonable(n) for n in lf["model_weights"][layer.name].attrs["weight_names"]]
                    hit = [n for n in names if np.array_equal(np.asarray(lf["model_weights"][layer.name][n]),
                                                              np.asarray(v)) and n.split("/")[-1].split(":")[0] == w["name"]]
                    assert len(hit) == 1, (layer.name, w["name"], names)
                    w["model_h5_dataset"] = f"model_weights/{layer.name}/{hit[0]}"
                entry["weights"].append(w)
            out.append(entry)
    finally:
        for f in (wf, lf):
            if f is not None:
                f.close()
    return out


def named_weights(model):
    """{layer name: {weight name: values}} for the layers that have weights."""
    out = {}
    for layer in model.layers:
        if layer.weights:
            out[layer.name] = {v.name.split("/")[-1].split(":")[0]: values(v) for v in layer.weights}
    return out


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def weights_diff(wa, wb):
    return max(max_diff(wa[layer][n], wb[layer][n]) for layer in wa for n in wa[layer])


def class_data(seed, n, k, spread=1.0):
    """n rows of 4 float32 features (multiples of 1/64) around k random centers in [-3, 3]^4; labels 0..k-1."""
    rs = np.random.RandomState(seed)
    centers = rs.uniform(-3, 3, (k, 4))
    y = rs.randint(0, k, n)
    X = np.round((centers[y] + rs.normal(0, spread, (n, 4))) * 64) / 64  # on a 1/64 grid: exact and short
    return X.astype(np.float32), y.astype(np.int64)


def regression_data(seed, n):
    """n rows of 4 float32 features in [-2, 2] (multiples of 1/64); target 0.7 x0 - 1.2 x1 + 0.4 x2 + 0.1 x3
    + 0.5 + N(0, 0.1) noise, rounded to a multiple of 1/256."""
    rs = np.random.RandomState(seed)
    X = np.round(rs.uniform(-2, 2, (n, 4)) * 64) / 64
    t = np.round((X @ np.array([0.7, -1.2, 0.4, 0.1]) + 0.5 + rs.normal(0, 0.1, n)) * 256) / 256
    return X.astype(np.float32), t.astype(np.float32)


def uniform_weights(seed, shapes, scale=0.6):
    """Fixed initial weights from numpy: kernels U(-scale, scale), biases U(-0.1, 0.1), as float32."""
    rs = np.random.RandomState(seed)
    return [rs.uniform(-scale if len(s) > 1 else -0.1, scale if len(s) > 1 else 0.1, s).astype(np.float32)
            for s in shapes]


# =========================================================================== 1. keras_layers
#
# For each case: build the model with real Keras (seeded), compile it, fit it a few epochs on small
# class_data (so that normalisation statistics and biases are not at their initial values), save it
# three ways and predict 20 random rows:
#
#   model.save('model.keras'); model.save_weights('model.weights.h5'); model.save('model.h5')
#   predictions = model.predict(random_inputs(seed, 20, 4))      # inference mode: Dropout off,
#                                                                # BatchNormalization uses moving stats
#
# Each file is loaded back by Keras (load_model, or load_weights into model_from_json(model.to_json()))
# and must predict the same.

LAYERS_TRAIN = dict(n=200, k=3, epochs=3, batch_size=32)


def layers_common(case, k, model, d, seed, fit=True, save=("keras", "h5", "weights"), description="",
                  loss="categorical_crossentropy", extra=None, custom_objects=None):
    X, y = class_data(seed, LAYERS_TRAIN["n"], LAYERS_TRAIN["k"])
    Y = one_hot(y, LAYERS_TRAIN["k"])
    optimizer = k.optimizers.Adam(learning_rate=0.01)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    training = None
    if fit:
        h = model.fit(X, Y, epochs=LAYERS_TRAIN["epochs"], batch_size=LAYERS_TRAIN["batch_size"], shuffle=False,
                      verbose=0)
        training = dict(data=f"class_data(seed={seed}, n={LAYERS_TRAIN['n']}, k={LAYERS_TRAIN['k']}) one-hot",
                        optimizer="Adam(learning_rate=0.01)", loss=loss, epochs=LAYERS_TRAIN["epochs"],
                        batch_size=LAYERS_TRAIN["batch_size"], shuffle=False,
                        history={key: [float(v) for v in vals] for key, vals in h.history.items()})
    files = {}
    with pinned_save_time():
        if "keras" in save:
            model.save(str(d / "model.keras"))
        if "weights" in save:
            model.save_weights(str(d / "model.weights.h5"))
        if "h5" in save:  # last: Keras 3.15's legacy-h5 save drops the optimizer from the compile config
            model.save(str(d / "model.h5"))

    inputs = random_inputs(seed, INPUT_ROWS, 4)
    preds = np.asarray(model.predict(inputs, verbose=0))
    out_dtype = str(preds.dtype)
    write_csv(d / "inputs.csv", x_header(4), inputs)
    write_csv(d / "predictions.csv", p_header(preds.shape[1]), preds)

    reload = {}
    if "keras" in save:
        files["model.keras"] = keras_archive(d / "model.keras")
        m2 = k.models.load_model(str(d / "model.keras"), custom_objects=custom_objects)
        reload["model.keras"] = max_diff(m2.predict(inputs, verbose=0), preds)
    if "h5" in save:
        files["model.h5"] = {"tree": h5_file_tree(d / "model.h5")}
        m2 = k.models.load_model(str(d / "model.h5"), custom_objects=custom_objects)
        reload["model.h5"] = max_diff(m2.predict(inputs, verbose=0), preds)
    if "weights" in save:
        files["model.weights.h5"] = {"tree": h5_file_tree(d / "model.weights.h5")}
        m2 = k.models.model_from_json(model.to_json(), custom_objects=custom_objects)
        m2.load_weights(str(d / "model.weights.h5"))
        reload["model.weights.h5"] = max_diff(m2.predict(inputs, verbose=0), preds)
    for name, diff in reload.items():
        assert diff <= 1e-6, (case, name, diff)
    if "weights" in save and files["model.keras"]["weights_h5_tree"] == files["model.weights.h5"]["tree"]:
        files["model.keras"]["weights_h5_tree"] = "same as files['model.weights.h5']['tree']"

    data = {
        "case": case,
        "description": description,
        "producer": f"keras {k.__version__}",
        "versions": {n: versions(n).split(" ", 1)[1] for n in KERAS3_VERSIONS},
        "library": "keras",
        "backend": k.backend.backend(),
        "model_class": model.__class__.__name__,
        "input_shape": jsonable(model.input_shape),
        "output_shape": jsonable(model.output_shape),
        "output_dtype": out_dtype,
        "layers": describe_layers(model, d / "model.weights.h5" if "weights" in save else None,
                                  d / "model.h5" if "h5" in save else None),
        "training": training,
        "inputs": "inputs.csv: random_inputs(%d, %d, 4) (uniform in [-10, 10], float32)" % (seed, INPUT_ROWS),
        "predictions": "predictions.csv: model.predict(inputs) (inference mode)",
        "reload_max_abs_diff": reload,
        "files": files,
    }
    if extra:
        data.update(extra)
    write_case_json(d, data)
    sizes = ", ".join(f"{p.name} {p.stat().st_size}" for p in sorted(d.iterdir()) if p.suffix in (".keras", ".h5"))
    print(f"keras_layers/{case}: {sizes}")
    return data


def layers_case(case, seed, build, description, **kw):
    """build(k) -> model, with Keras 3."""
    k = keras3()
    fresh_sessions(k)
    k.utils.set_random_seed(seed)
    d = case_dir("keras_layers", case)
    model = build(k)
    data = layers_common(case, k, model, d, seed, description=description, **kw)
    write_source(d, f"keras_layers_fixtures/{case}", KERAS3_VERSIONS)
    return data


def build_dropout(k):
    L = k.layers
    return k.Sequential([k.Input((4,)), L.Dense(6, activation="relu"), L.Dropout(0.3), L.Dense(3, activation="softmax")])


def build_batchnorm(k):
    L = k.layers
    return k.Sequential([k.Input((4,)), L.Dense(6, activation="relu"), L.BatchNormalization(momentum=0.9, epsilon=1e-3),
                         L.Dense(3, activation="softmax")])


def build_layernorm(k):
    L = k.layers
    return k.Sequential([k.Input((4,)), L.Dense(6, activation="relu"), L.LayerNormalization(),
                         L.Dense(3, activation="softmax")])


def build_activation_layers(k):
    L = k.layers
    return k.Sequential([k.Input((4,)), L.Dense(6), L.Activation("relu"), L.Dense(3), L.Activation("softmax")])


def build_flatten_input(k):
    L = k.layers
    return k.Sequential([k.Input(shape=(4,)), L.Flatten(), L.Dense(6, activation="relu"),
                         L.Dense(3, activation="softmax")])


def build_functional_chain(k):
    L = k.layers
    inputs = k.Input((4,), name="features")
    x = L.Dense(6, activation="relu")(inputs)
    x = L.BatchNormalization(momentum=0.95, epsilon=0.01)(x)
    x = L.Dropout(0.2)(x)
    outputs = L.Dense(3, activation="softmax")(x)
    return k.Model(inputs, outputs, name="chain")


def build_functional_branch(k):
    L = k.layers
    inputs = k.Input((4,), name="features")
    a = L.Dense(4, activation="relu")(inputs)
    b = L.Dense(4, activation="tanh")(inputs)
    merged = L.Concatenate()([L.Add()([a, b]), inputs])
    outputs = L.Dense(3, activation="softmax")(merged)
    return k.Model(inputs, outputs, name="branch")


def build_activations_more(k):
    L = k.layers
    init = dict(bias_initializer=k.initializers.RandomNormal(stddev=0.5, seed=1))
    return k.Sequential([
        k.Input((4,)),
        L.Dense(6, activation="leaky_relu", **init),
        L.Dense(6, **init), L.LeakyReLU(negative_slope=0.2),
        L.Dense(6, activation="relu6", **init),
        L.Dense(6, activation="mish", **init),
        L.Dense(6, activation="hard_sigmoid", **init),
        L.Dense(6, activation="hard_silu", **init),
        L.Dense(6, activation="silu", **init),
        L.Dense(3, activation="log_softmax", **init),
    ])


def gelu_approximate(x):
    """keras.activations.gelu(x, approximate=True): Keras 3 has no built-in name for it."""
    return keras3().activations.gelu(x, approximate=True)


def build_gelu_approximate(k):
    L = k.layers
    fn = k.saving.register_keras_serializable(package="keras_transfer", name="gelu_approximate")(gelu_approximate)
    return k.Sequential([k.Input((4,)), L.Dense(6, activation=fn), L.Dense(6, activation="gelu"),
                         L.Dense(3, activation="softmax")])


def build_float64(k):
    L = k.layers
    k.config.set_dtype_policy("float64")  # after fresh_sessions: clear_session() resets the global policy
    return k.Sequential([k.Input((4,), dtype="float64"), L.Dense(6, activation="relu"), L.LayerNormalization(),
                         L.Dense(3, activation="softmax")])


def k2_batchnorm_dropout_case(seed=410):
    """tf.keras 2: Dense(6, relu, input_dim=4), BatchNormalization(momentum=0.9), Dropout(0.3), Dense(3, softmax),
    saved with model.save('model.h5') and model.save_weights('model.weights.h5'); model.keras too when it can."""
    k2 = keras2()
    fresh_sessions(k2, keras3())
    k2.utils.set_random_seed(seed)
    d = case_dir("keras_layers", "k2_batchnorm_dropout")
    L = k2.layers
    model = k2.Sequential([L.Dense(6, activation="relu", input_dim=4), L.BatchNormalization(momentum=0.9),
                           L.Dropout(0.3), L.Dense(3, activation="softmax")])
    case = "k2_batchnorm_dropout"
    X, y = class_data(seed, LAYERS_TRAIN["n"], LAYERS_TRAIN["k"])
    model.compile(optimizer=k2.optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    h = model.fit(X, one_hot(y, 3), epochs=LAYERS_TRAIN["epochs"], batch_size=LAYERS_TRAIN["batch_size"],
                  shuffle=False, verbose=0)
    files, reload, notes = {}, {}, {}
    inputs = random_inputs(seed, INPUT_ROWS, 4)
    preds = np.asarray(model.predict(inputs, verbose=0))
    write_csv(d / "inputs.csv", x_header(4), inputs)
    write_csv(d / "predictions.csv", p_header(preds.shape[1]), preds)
    with pinned_save_time():
        try:
            model.save(str(d / "model.keras"))
        except Exception as e:  # noqa: BLE001 - recorded in case.json
            notes["model.keras"] = f"tf-keras could not write it: {e!r}"
        model.save_weights(str(d / "model.weights.h5"))
        model.save(str(d / "model.h5"))
    files["model.h5"] = {"tree": h5_file_tree(d / "model.h5")}
    reload["model.h5 (tf-keras)"] = max_diff(k2.models.load_model(str(d / "model.h5")).predict(inputs, verbose=0), preds)
    files["model.weights.h5"] = {"tree": h5_file_tree(d / "model.weights.h5")}
    m2 = k2.models.clone_model(model)
    m2.load_weights(str(d / "model.weights.h5"))
    reload["model.weights.h5 (tf-keras)"] = max_diff(m2.predict(inputs, verbose=0), preds)
    if (d / "model.keras").exists():
        files["model.keras"] = keras_archive(d / "model.keras")
        reload["model.keras (tf-keras)"] = max_diff(
            k2.models.load_model(str(d / "model.keras")).predict(inputs, verbose=0), preds)
    # Keras 3 reading the tf.keras 2 files
    k3 = keras3()
    for name in ("model.h5", "model.keras"):
        if not (d / name).exists():
            continue
        try:
            reload[f"{name} (keras 3)"] = max_diff(k3.models.load_model(str(d / name)).predict(inputs, verbose=0), preds)
        except Exception as e:  # noqa: BLE001
            notes[f"{name} in keras 3"] = "load failed: " + str(e).split("Exception encountered: ")[-1]
    for name, diff in reload.items():
        assert diff <= 1e-6, (case, name, diff)
    data = {
        "case": case,
        "description": "tf.keras 2 Sequential (Keras-2 style, input_dim on the first Dense): Dense(6, relu), "
                       "BatchNormalization(momentum=0.9), Dropout(0.3), Dense(3, softmax); Adam(0.01), 3 epochs",
        "producer": f"tf-keras {k2.__version__}",
        "versions": {n: versions(n).split(" ", 1)[1] for n in KERAS2_VERSIONS},
        "library": "tf-keras",
        "backend": "tensorflow",
        "model_class": model.__class__.__name__,
        "input_shape": jsonable(model.input_shape),
        "output_shape": jsonable(model.output_shape),
        "output_dtype": str(preds.dtype),
        "layers": describe_layers(model, d / "model.weights.h5", d / "model.h5", keras2_model=True),
        "training": dict(data=f"class_data(seed={seed}, n={LAYERS_TRAIN['n']}, k=3) one-hot",
                         optimizer="Adam(learning_rate=0.01)", loss="categorical_crossentropy",
                         epochs=LAYERS_TRAIN["epochs"], batch_size=LAYERS_TRAIN["batch_size"], shuffle=False,
                         history={key: [float(v) for v in vals] for key, vals in h.history.items()}),
        "inputs": "inputs.csv: random_inputs(%d, %d, 4) (uniform in [-10, 10], float32)" % (seed, INPUT_ROWS),
        "predictions": "predictions.csv: model.predict(inputs) (inference mode)",
        "reload_max_abs_diff": reload,
        "notes": notes,
        "files": files,
    }
    write_case_json(d, data)
    write_source(d, "keras_layers_fixtures/k2_batchnorm_dropout", KERAS2_VERSIONS)
    sizes = ", ".join(f"{p.name} {p.stat().st_size}" for p in sorted(d.iterdir()) if p.suffix in (".keras", ".h5"))
    print(f"keras_layers/{case}: {sizes}; notes {notes}")


# ---------------------------------------------------------------- batchnorm_train
#
#   model = Sequential([Input((4,)), Dense(5, relu), BatchNormalization(), Dense(3, softmax)])
#   model.set_weights(initial)                       # fixed numbers (case.json "initial")
#   model.compile(optimizer=SGD(learning_rate=0.01), loss='categorical_crossentropy', metrics=['accuracy'])
#   model.save('model.keras')                        # untrained
#   model.fit(trainX, one_hot(trainy, 3), epochs=1, batch_size=32, shuffle=False)   # 100 rows: 32, 32, 32, 4
#
# In training mode BatchNormalization normalises with the batch's mean and biased variance and updates
#   moving_mean     = moving_mean * momentum + batch_mean * (1 - momentum)
#   moving_variance = moving_variance * momentum + batch_variance * (1 - momentum)
# (checked below against numpy, batch by batch).

BN_TRAIN_ROWS = 100


def batchnorm_train_case(seed=420):
    k = keras3()
    fresh_sessions(k)
    k.utils.set_random_seed(seed)
    case = "batchnorm_train"
    d = case_dir("keras_layers", case)
    L = k.layers
    model = k.Sequential([k.Input((4,)), L.Dense(5, activation="relu"), L.BatchNormalization(),
                          L.Dense(3, activation="softmax")])
    rs = np.random.RandomState(seed)
    initial = [rs.uniform(-0.8, 0.8, (4, 5)), rs.uniform(-0.1, 0.1, 5),
               1.0 + rs.uniform(-0.2, 0.2, 5), rs.uniform(-0.1, 0.1, 5), np.zeros(5), np.ones(5),
               rs.uniform(-0.8, 0.8, (5, 3)), rs.uniform(-0.1, 0.1, 3)]
    model.set_weights([w.astype(np.float32) for w in initial])
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    with pinned_save_time():
        model.save(str(d / "model.keras"))
    X, y = class_data(seed, BN_TRAIN_ROWS, 3)
    write_csv(d / "train.csv", x_header(4) + ["label"], [list(x) + [int(t)] for x, t in zip(X, y)])
    start = named_weights(model)
    batches = []

    class Record(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append({"batch": batch, "weights": named_weights(self.model),
                            "logs": {key: float(v) for key, v in (logs or {}).items()}})

    h = model.fit(X, one_hot(y, 3), epochs=1, batch_size=32, shuffle=False, verbose=0, callbacks=[Record()])
    final = named_weights(model)

    # numpy check of the moving-statistics update, batch by batch (from the weights before each batch)
    bn = model.layers[1]
    momentum = float(bn.momentum)
    check = {"biased": 0.0, "unbiased": 0.0, "mean": 0.0}
    before = start
    for i, b in enumerate(batches):
        xb = X[32 * i:32 * (i + 1)].astype(np.float64)
        hid = np.maximum(xb @ np.array(before["dense"]["kernel"]) + np.array(before["dense"]["bias"]), 0.0)
        mm, mv = np.array(before[bn.name]["moving_mean"]), np.array(before[bn.name]["moving_variance"])
        got_m, got_v = np.array(b["weights"][bn.name]["moving_mean"]), np.array(b["weights"][bn.name]["moving_variance"])
        check["mean"] = max(check["mean"], max_diff(got_m, mm * momentum + hid.mean(0) * (1 - momentum)))
        check["biased"] = max(check["biased"], max_diff(got_v, mv * momentum + hid.var(0) * (1 - momentum)))
        if len(xb) > 1:
            check["unbiased"] = max(check["unbiased"], max_diff(got_v, mv * momentum + hid.var(0, ddof=1) * (1 - momentum)))
        before = b["weights"]
    assert check["mean"] < 1e-6 and check["biased"] < 1e-6 < check["unbiased"], check

    data = {
        "case": case,
        "description": "Sequential([Input((4,)), Dense(5, relu), BatchNormalization(), Dense(3, softmax)]) with the "
                       "fixed weights 'initial', compiled SGD(0.01) + categorical_crossentropy, saved untrained as "
                       "model.keras, then fitted ONE epoch on train.csv (one-hot labels), batch_size 32, "
                       "shuffle=False (batches of 32, 32, 32, 4 rows)",
        "producer": f"keras {k.__version__}",
        "versions": {n: versions(n).split(" ", 1)[1] for n in KERAS3_VERSIONS},
        "train": {"file": "train.csv", "rows": BN_TRAIN_ROWS, "labels": "integer 0..2, fed one-hot",
                  "data": f"class_data(seed={seed}, n={BN_TRAIN_ROWS}, k=3)"},
        "compile": {"optimizer": "SGD", "optimizer_config": jsonable(model.optimizer.get_config()),
                    "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 1, "batch_size": 32, "shuffle": False},
        "batchnorm": {"momentum": momentum, "epsilon": float(bn.epsilon),
                      "moving_stats_update": "moving = moving * momentum + batch_stat * (1 - momentum); "
                                             "batch variance is the biased (population) one, also for normalising",
                      "numpy_check_max_abs_diff": check},
        "layers": describe_layers(model),
        "initial": start,
        "after_batch": batches,
        "final": final,
        "history": {key: [float(v) for v in vals] for key, vals in h.history.items()},
        "tolerance": 1e-6,
        "files": {"model.keras": keras_archive(d / "model.keras")},
    }
    write_case_json(d, data)
    write_source(d, f"keras_layers_fixtures/{case}", KERAS3_VERSIONS)
    print(f"keras_layers/{case}: loss {data['history']['loss']}, moving-stat check {check}")


def keras_layers_fixtures():
    case_dir("keras_layers")
    layers_case("dropout", 401, build_dropout,
                "Sequential: Dense(6, relu), Dropout(0.3), Dense(3, softmax)")
    layers_case("batchnorm", 402, build_batchnorm,
                "Sequential: Dense(6, relu), BatchNormalization(momentum=0.9, epsilon=1e-3), Dense(3, softmax); "
                "trained 3 epochs so that moving_mean/moving_variance are not 0/1")
    layers_case("layernorm", 403, build_layernorm,
                "Sequential: Dense(6, relu), LayerNormalization() (epsilon 1e-3), Dense(3, softmax)")
    layers_case("activation_layers", 404, build_activation_layers,
                "Sequential: Dense(6) (linear), Activation('relu'), Dense(3), Activation('softmax')")
    layers_case("flatten_input", 405, build_flatten_input,
                "Sequential: Input(shape=(4,)), Flatten(), Dense(6, relu), Dense(3, softmax)")
    layers_case("functional_chain", 406, build_functional_chain,
                "Functional: Input((4,), name='features') -> Dense(6, relu) -> BatchNormalization(momentum=0.95, "
                "epsilon=0.01) -> Dropout(0.2) -> Dense(3, softmax); keras.Model(inputs, outputs, name='chain')")
    layers_case("functional_branch", 407, build_functional_branch,
                "Functional with merges (a file to refuse): Input((4,)) -> a = Dense(4, relu), b = Dense(4, tanh); "
                "Concatenate()([Add()([a, b]), inputs]) -> Dense(3, softmax)", save=("keras", "h5"))
    layers_case("activations_more", 408, build_activations_more,
                "Sequential, not fitted (compiled only; biases from RandomNormal(stddev=0.5)): Dense(6, leaky_relu), "
                "Dense(6) + LeakyReLU(negative_slope=0.2), Dense(6, relu6), Dense(6, mish), Dense(6, hard_sigmoid), "
                "Dense(6, hard_silu), Dense(6, silu), Dense(3, log_softmax)", fit=False,
                extra={"activation_notes": {
                    "leaky_relu": "activation string: negative_slope 0.2 (keras.activations.leaky_relu default)",
                    "LeakyReLU": "layer default negative_slope is 0.3; here 0.2 explicitly",
                    "hard_sigmoid": "Keras 3: relu6(x + 3) / 6, i.e. clip(x / 6 + 0.5, 0, 1) (tf.keras 2 used "
                                    "clip(0.2 x + 0.5, 0, 1))",
                    "hard_silu": "x * hard_sigmoid(x)", "silu": "x * sigmoid(x)",
                    "mish": "x * tanh(softplus(x))", "relu6": "min(max(x, 0), 6)",
                    "log_softmax": "x - logsumexp(x) over the last axis"}})
    layers_case("gelu_approximate", 409, build_gelu_approximate,
                "Sequential: Dense(6, activation=gelu_approximate), Dense(6, gelu), Dense(3, softmax). Keras 3 has no "
                "built-in name for gelu(approximate=True): the first layer's activation is a registered custom "
                "function 'keras_transfer>gelu_approximate' (= keras.activations.gelu(x, approximate=True)); the "
                "string 'gelu' is the exact (erf) one",
                custom_objects={"keras_transfer>gelu_approximate": gelu_approximate})
    k = keras3()
    try:
        layers_case("float64", 411, build_float64,
                    "Sequential built under keras.config.set_dtype_policy('float64'): Input((4,), dtype='float64'), "
                    "Dense(6, relu), LayerNormalization(), Dense(3, softmax); every variable is float64")
    finally:
        k.config.set_dtype_policy("float32")
    k2_batchnorm_dropout_case()
    batchnorm_train_case()


# =========================================================================== 2. keras_compile
#
# For each case (train.csv: 100 rows, x0..x3,label):
#
#   model = Sequential([Input((4,)), Dense(6, relu, **reg), Dense(K, OUT_ACTIVATION, **reg)])
#   model.set_weights(initial)                         # fixed numbers, case.json "initial"
#   model.compile(optimizer=OPTIMIZER, loss=LOSS, metrics=METRICS)
#   model.save('model.keras'); model.save('model.h5')  # untrained
#   history = model.fit(X, T, epochs=20, batch_size=32, shuffle=False, **FIT)   # 4 batches: 32, 32, 32, 4
#   model.save('fitted.keras')                         # with the optimizer state
#   model.fit(X, T, epochs=1, batch_size=32, shuffle=False, **FIT)   # after_one_more_epoch
#   (load_model('fitted.keras') is checked to restore weights, optimizer variables and compile config exactly)
#
# T: one-hot float labels (categorical losses), integer labels (sparse), float 0/1 of shape (N, 1)
# (binary) or the float target of shape (N, 1) (regression).

COMPILE_ROWS = 100
COMPILE_EPOCHS = 20
COMPILE_BATCH = 32


def compile_cases(k):
    O, S, R, Lo = k.optimizers, k.optimizers.schedules, k.regularizers, k.losses
    sgd05 = lambda: O.SGD(learning_rate=0.05)  # noqa: E731
    cce = "categorical_crossentropy"
    cases = {
        "sgd_momentum": dict(opt=lambda: O.SGD(learning_rate=0.01, momentum=0.9)),
        "sgd_nesterov": dict(opt=lambda: O.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)),
        "adam": dict(opt=lambda: O.Adam(learning_rate=0.01)),
        "adam_amsgrad": dict(opt=lambda: O.Adam(learning_rate=0.01, amsgrad=True)),
        "adamw": dict(opt=lambda: O.AdamW(learning_rate=0.01, weight_decay=0.01)),
        "rmsprop": dict(opt=lambda: O.RMSprop(learning_rate=0.01, rho=0.9)),
        "rmsprop_centered_momentum": dict(opt=lambda: O.RMSprop(learning_rate=0.01, rho=0.9, momentum=0.5,
                                                                 centered=True)),
        "adagrad": dict(opt=lambda: O.Adagrad(learning_rate=0.05)),
        "adadelta": dict(opt=lambda: O.Adadelta(learning_rate=1.0)),
        "adamax": dict(opt=lambda: O.Adamax(learning_rate=0.01)),
        "nadam": dict(opt=lambda: O.Nadam(learning_rate=0.01)),
        "lion": dict(opt=lambda: O.Lion(learning_rate=0.001)),
        "ftrl": dict(opt=lambda: O.Ftrl(learning_rate=0.05)),
        "ftrl_l1_l2": dict(opt=lambda: O.Ftrl(learning_rate=0.05, learning_rate_power=-0.6,
                                              initial_accumulator_value=0.2, l1_regularization_strength=0.01,
                                              l2_regularization_strength=0.02,
                                              l2_shrinkage_regularization_strength=0.005, beta=0.1)),
        "sgd_clipnorm": dict(opt=lambda: O.SGD(learning_rate=0.05, clipnorm=1.0),
                             unclipped=lambda: O.SGD(learning_rate=0.05)),
        "adam_clipvalue": dict(opt=lambda: O.Adam(learning_rate=0.01, clipvalue=0.5),
                               unclipped=lambda: O.Adam(learning_rate=0.01)),
        "sgd_global_clipnorm": dict(opt=lambda: O.SGD(learning_rate=0.05, global_clipnorm=1.0),
                                    unclipped=lambda: O.SGD(learning_rate=0.05)),
        "sgd_weight_decay": dict(opt=lambda: O.SGD(learning_rate=0.05, weight_decay=0.01)),
        "sgd_exponential_decay": dict(opt=lambda: O.SGD(learning_rate=S.ExponentialDecay(
            initial_learning_rate=0.05, decay_steps=10, decay_rate=0.8))),
        "adam_cosine_decay": dict(opt=lambda: O.Adam(learning_rate=S.CosineDecay(
            initial_learning_rate=0.01, decay_steps=60, alpha=0.1))),
        "sgd_piecewise": dict(opt=lambda: O.SGD(learning_rate=S.PiecewiseConstantDecay(
            boundaries=[20, 50], values=[0.05, 0.02, 0.005]))),
        "sgd_inverse_time": dict(opt=lambda: O.SGD(learning_rate=S.InverseTimeDecay(
            initial_learning_rate=0.05, decay_steps=10, decay_rate=0.5))),
        # losses, SGD(0.05)
        "categorical_crossentropy": dict(opt=sgd05, loss=cce),
        "categorical_from_logits": dict(opt=sgd05, loss=lambda: Lo.CategoricalCrossentropy(from_logits=True),
                                        out_activation="linear"),
        "categorical_label_smoothing": dict(opt=sgd05, loss=lambda: Lo.CategoricalCrossentropy(label_smoothing=0.1)),
        "sparse_categorical": dict(opt=sgd05, loss="sparse_categorical_crossentropy", target="sparse"),
        "binary_crossentropy": dict(opt=sgd05, loss="binary_crossentropy", target="binary", units=1,
                                    out_activation="sigmoid"),
        "mse_regression": dict(opt=sgd05, loss="mse", target="regression", units=1, out_activation="linear",
                               metrics=["mae"]),
        "mae_regression": dict(opt=sgd05, loss="mae", target="regression", units=1, out_activation="linear",
                               metrics=["mse"]),
        "huber_regression": dict(opt=sgd05, loss=lambda: Lo.Huber(delta=1.0), target="regression", units=1,
                                 out_activation="linear", metrics=["mae"]),
        # regularisers, SGD(0.05)
        "l2_kernel": dict(opt=sgd05, reg=lambda: dict(kernel_regularizer=R.L2(0.01))),
        "l1_bias": dict(opt=sgd05, reg=lambda: dict(bias_regularizer=R.L1(0.01))),
        "l1l2_activity": dict(opt=sgd05, reg_hidden=lambda: dict(activity_regularizer=R.L1L2(l1=0.01, l2=0.01))),
        "class_weight": dict(opt=sgd05, fit=dict(class_weight={0: 1.0, 1: 2.0, 2: 0.5})),
        "validation_split": dict(opt=sgd05, fit=dict(validation_split=0.2)),
    }
    return cases


def compile_targets(kind, seed):
    """(X, labels for train.csv, targets as fed to fit, description)."""
    if kind == "regression":
        X, t = regression_data(seed, COMPILE_ROWS)
        return X, t, t.reshape(-1, 1), "float target (column label), fed with shape (N, 1)"
    if kind == "binary":
        X, y = class_data(seed, COMPILE_ROWS, 2)
        return X, y, y.astype(np.float32).reshape(-1, 1), "integer 0/1 labels, fed as float32 of shape (N, 1)"
    X, y = class_data(seed, COMPILE_ROWS, 3)
    if kind == "sparse":
        return X, y, y, "integer labels 0..2, fed as integers (sparse)"
    return X, y, one_hot(y, 3).astype(np.float32), "integer labels 0..2, fed one-hot (float32, N x 3)"


def optimizer_variables(opt):
    return [{"name": v.name, "path": v.path, "shape": list(v.shape), "dtype": str(np.asarray(v).dtype),
             "values": values(v)} for v in opt.variables]


def describe_loss(k, loss):
    if isinstance(loss, str):
        return {"identifier": loss}
    return {"class_name": loss.__class__.__name__, "config": jsonable(loss.get_config()),
            "serialized": jsonable(k.losses.serialize(loss))}


def compile_case(k, case, spec, seed=500):
    fresh_sessions(k)
    k.utils.set_random_seed(seed)
    d = case_dir("keras_compile", case)
    L = k.layers
    target = spec.get("target", "categorical")
    units = spec.get("units", 3)
    out_act = spec.get("out_activation", "softmax")
    reg = spec["reg"]() if "reg" in spec else {}
    reg_hidden = spec["reg_hidden"]() if "reg_hidden" in spec else {}
    loss = spec.get("loss", "categorical_crossentropy")
    loss = loss() if callable(loss) else loss
    metrics = spec.get("metrics", ["accuracy"])
    fit_kw = dict(spec.get("fit", {}))

    def build(make_optimizer):
        k.backend.clear_session(free_memory=False)  # default names (sequential, dense, dense_1, sgd, ...)
        optimizer = make_optimizer()
        # Keras's default names, given explicitly as well
        m = k.Sequential([k.Input((4,)), L.Dense(6, activation="relu", name="dense", **reg, **reg_hidden),
                          L.Dense(units, activation=out_act, name="dense_1", **reg)], name="sequential")
        m.set_weights(initial)
        m.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        return m

    initial = uniform_weights(seed + units, [(4, 6), (6,), (6, units), (units,)])
    # model.h5 from a twin: Keras 3.15's legacy-h5 save pops "optimizer" from the model's compile
    # config (saving_utils.model_metadata), so a later model.save('x.keras') would lose it.
    twin = build(spec["opt"])
    with pinned_save_time():
        twin.save(str(d / "model.h5"))
    assert "optimizer" not in twin.get_compile_config()
    model = build(spec["opt"])
    assert [layer.name for layer in model.layers] == ["dense", "dense_1"], [layer.name for layer in model.layers]
    opt_config_compiled = jsonable(model.optimizer.get_config())
    compile_config = jsonable(model.get_compile_config())
    with pinned_save_time():
        model.save(str(d / "model.keras"))
    h5_reload = {}
    try:
        m5 = k.models.load_model(str(d / "model.h5"))
        h5_reload = {"loads": True, "optimizer_class": m5.optimizer.__class__.__name__,
                     "optimizer_config": jsonable(m5.optimizer.get_config())}
    except Exception as e:  # noqa: BLE001 - recorded in case.json
        h5_reload = {"loads": False, "error": f"{e.__class__.__name__}: {e}"}
    model = build(spec["opt"])
    assert [layer.name for layer in model.layers] == ["dense", "dense_1"], [layer.name for layer in model.layers]
    X, labels, T, target_desc = compile_targets(target, seed)
    write_csv(d / "train.csv", x_header(4) + ["label"], [list(x) + [v if target != "regression" else float(v)]
                                                        for x, v in zip(X, labels)])
    start = named_weights(model)
    after1 = {}

    class RecordEpoch1(k.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                after1["w"] = named_weights(self.model)

    fit_args = dict(batch_size=COMPILE_BATCH, shuffle=False, verbose=0, **fit_kw)
    h = model.fit(X, T, epochs=COMPILE_EPOCHS, callbacks=[RecordEpoch1()], **fit_args)
    final = named_weights(model)
    opt_vars = optimizer_variables(model.optimizer)
    with pinned_save_time():
        model.save(str(d / "fitted.keras"))

    # fitted.keras must restore the whole training state (weights, optimizer variables, compile
    # settings); then one more epoch from it is one more epoch of the in-memory model
    m2 = k.models.load_model(str(d / "fitted.keras"))
    m2_opt = optimizer_variables(m2.optimizer)
    restored = max([weights_diff(final, named_weights(m2))] +
                   [max_diff(a["values"], b["values"]) for a, b in zip(m2_opt, opt_vars)])
    assert [v["shape"] for v in m2_opt] == [v["shape"] for v in opt_vars], (m2_opt, opt_vars)
    assert m2.optimizer.get_config() == model.optimizer.get_config()
    assert m2.get_compile_config() == model.get_compile_config()
    h2 = model.fit(X, T, epochs=1, **fit_args)
    more = named_weights(model)

    extra = {}
    if "unclipped" in spec:  # does the clipping bite? the same fit without it
        m3 = build(spec["unclipped"])
        m3.fit(X, T, epochs=COMPILE_EPOCHS, **fit_args)
        extra["without_clipping_max_abs_weight_diff"] = max(
            max_diff(a, b) for a, b in zip([w for layer in final.values() for w in layer.values()], m3.get_weights()))
        assert extra["without_clipping_max_abs_weight_diff"] > 1e-4, (case, extra)

    opt = model.optimizer
    model_archive = keras_archive(d / "model.keras")
    fitted_archive = keras_archive(d / "fitted.keras")
    if fitted_archive["config_json"] == model_archive["config_json"]:
        fitted_archive["config_json"] = "same as files['model.keras']['config_json']"
    # the weights layout of an untrained model.keras is the keras_layers one; keep the fitted one
    # (it shows where the optimizer variables go)
    model_archive["weights_h5_datasets"] = [f"{e['path']} {e['dtype']} {e['shape']}"
                                            for e in model_archive.pop("weights_h5_tree") if e["kind"] == "dataset"]
    opt_config_after = jsonable(opt.get_config())
    if opt_config_after == opt_config_compiled:
        opt_config_after = "same as optimizer_config"
    data = {
        "case": case,
        "producer": f"keras {k.__version__}",
        "versions": {n: versions(n).split(" ", 1)[1] for n in KERAS3_VERSIONS},
        "model": {"layers": [dict(name="dense", units=6, activation="relu", **({k_: layer_config(model.layers[0])[k_]
                                                                                 for k_ in (*reg, *reg_hidden)})),
                             dict(name="dense_1", units=units, activation=out_act,
                                  **({k_: layer_config(model.layers[1])[k_] for k_ in reg}))],
                  "input_dim": 4, "layer_configs": "see files['model.keras']['config_json']"},
        "train": {"file": "train.csv", "rows": COMPILE_ROWS, "target": target, "fed_as": target_desc},
        "compile": {
            "optimizer_class": opt.__class__.__name__,
            "optimizer_config": opt_config_compiled,
            "optimizer_config_after_fit": opt_config_after,
            "loss": describe_loss(k, loss),
            "metrics": metrics,
            "compile_config": compile_config,
        },
        "fit": {"epochs": COMPILE_EPOCHS, "batch_size": COMPILE_BATCH, "shuffle": False,
                **{key: jsonable(v) for key, v in fit_kw.items()}},
        "initial": start,
        "after_epoch_1": after1["w"],
        "final": final,
        "history": {key: [float(v) for v in vals] for key, vals in h.history.items()},
        "optimizer_variables": opt_vars,
        "after_one_more_epoch": {
            "how": "fit(X, T, epochs=1, same arguments) once more, from the state saved in fitted.keras "
                   "(load_model('fitted.keras') restores it exactly: restored_state_max_abs_diff)",
            "weights": more,
            "history": {key: [float(v) for v in vals] for key, vals in h2.history.items()},
            "optimizer_variables": optimizer_variables(model.optimizer),
            "restored_state_max_abs_diff": restored,
            "optimizer_variable_paths_after_load_model": [v["path"] for v in m2_opt],
        },
        "tolerance": 1e-5,
        "keras_load_model_h5": h5_reload,
        **extra,
        "files": {
            "model.keras": model_archive,
            "model.h5": h5_training_attrs(d / "model.h5"),
            "fitted.keras": fitted_archive,
        },
    }
    assert restored == 0.0, (case, restored)
    write_case_json(d, data)
    write_source(d, f"keras_compile_fixtures/{case}", KERAS3_VERSIONS)
    hist = data["history"]
    print(f"keras_compile/{case}: loss {hist['loss'][0]:.4f} -> {hist['loss'][-1]:.4f}; "
          f"optimizer vars {[v['name'] for v in opt_vars][:4]}...")


def keras_compile_fixtures(only=None):
    """All cases (the group folder is emptied first), or just the named ones (when iterating by hand)."""
    k = keras3()
    if not only:
        case_dir("keras_compile")
    for case, spec in compile_cases(k).items():
        if only and case not in only:
            continue
        compile_case(k, case, spec)


GROUPS = {
    "keras_layers": keras_layers_fixtures,
    "keras_compile": keras_compile_fixtures,
}


def main(argv):
    names = argv or list(GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        sys.exit(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    for name in names:
        start = time.time()
        GROUPS[name]()
        print(f"== {name}: {time.time() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
