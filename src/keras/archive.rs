//! Keras 3's own files: the `.keras` zip archive (`metadata.json`, `config.json`,
//! `model.weights.h5`) and the standalone `.weights.h5`, read without extracting anything to disk (the
//! HDF5 member is opened from memory, as a libhdf5 file image) and written by Keras's layout rules
//! (docs/keras-files.md#the-keras-archive).
//!
//! Everything here is generic over `LayerSpec::weights`: layer `i`'s weights are the datasets
//! `layers/<path>/vars/0..n` in that order, where `<path>` is the snake-case class name made unique
//! per class (`dense`, `dense_1`, `batch_normalization`, ...), exactly as Keras's `saving_lib` names
//! them; the optimizer's variables are `optimizer/vars/0..n` in `optimizer.variables` order. Every
//! declared size is checked before anything is decompressed or read.

use crate::error::{Error, Result};
use crate::fsutil::write_bytes_atomic;
use crate::keras::config::{self, Format};
use crate::keras::h5::{
    SavedCount, archived_state, keras_optimizer_name, optimizer_layout, read_layer_weight,
    read_string, saved_count, write_layer_weight, write_values,
};
use crate::keras::h5_guard::{self, Ctx};
use crate::keras::h5_values::{float_dtype, step_count};
use crate::keras::layer_config::is_operation;
use crate::keras::model::{CompileSettings, KerasModel};
use crate::keras::tfkeras2_optimizer;
use crate::model::nested::{Unit, units_in};
use crate::model::{FloatDtype, LayerWeights, ModelSpec};
use crate::train::optimizer::trainable_variables;
use crate::train::{Compile, LearningRate, OptimizerState};
use hdf5::types::VarLenUnicode;
use serde_json::{Value, json};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The archive's members, as Keras names them.
pub const CONFIG_JSON: &str = "config.json";
pub const METADATA_JSON: &str = "metadata.json";
pub const WEIGHTS_H5: &str = "model.weights.h5";

/// Largest `config.json` or `metadata.json` read (a large MLP's config is a few hundred KiB).
const MAX_JSON: u64 = 16 << 20;
/// What Keras 2.13 named the `layers` group of a weights file.
const LEGACY_LAYERS: &str = "_layer_checkpoint_dependencies";
/// Most members an archive may list.
const MAX_MEMBERS: usize = 1000;
/// Bytes allowed in a weights file beyond its data: HDF5's own structures, per layer and in all.
const H5_OVERHEAD_PER_LAYER: u64 = 64 << 10;
const H5_OVERHEAD: u64 = 1 << 20;

/// Keras's `naming.to_snake_case`: `BatchNormalization` -> `batch_normalization`.
pub fn snake_case(class: &str) -> String {
    let s: Vec<char> = class
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2"): a capital followed by lower-case letters starts a word.
    let mut a: Vec<char> = Vec::with_capacity(s.len() * 2);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len()
            && s[i + 1].is_ascii_uppercase()
            && s.get(i + 2).is_some_and(|c| c.is_ascii_lowercase())
        {
            a.push(s[i]);
            a.push('_');
            let mut j = i + 1;
            a.push(s[j]);
            j += 1;
            while j < s.len() && s[j].is_ascii_lowercase() {
                a.push(s[j]);
                j += 1;
            }
            i = j;
        } else {
            a.push(s[i]);
            i += 1;
        }
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2").lower()
    let mut out = String::with_capacity(a.len() * 2);
    let mut k = 0;
    while k < a.len() {
        out.push(a[k]);
        if k + 1 < a.len() && a[k].is_ascii_lowercase() && a[k + 1].is_ascii_uppercase() {
            out.push('_');
            out.push(a[k + 1]);
            k += 2;
        } else {
            k += 1;
        }
    }
    out.to_lowercase()
}

/// Where each layer's variables live in a Keras 3 weights file: `layers/<snake class>[_<n>]`, the
/// suffix counting earlier layers of the same class (Keras's `_get_unique_name`).
pub fn layer_paths(spec: &ModelSpec) -> Vec<String> {
    all_paths(spec).0
}

/// `layer_paths`, and the path of each nested model (`layers/sequential`, ...): a nested model is
/// one entry of the layers of the model holding it, its own layers (and nested models) under
/// `<its path>/layers/`, counted there, level by level. Keras 3's operations on tensors
/// (`keras.src.ops.numpy.Add`) are not layers of `model.layers`: they get no path (empty).
fn all_paths(spec: &ModelSpec) -> (Vec<String>, Vec<String>) {
    let n = spec.layers.len();
    let mut layers = vec![String::new(); n];
    let mut nested = vec![String::new(); spec.nested.len()];
    // (the model whose entries are numbered, None for the outer one; its path)
    let mut todo: Vec<(Option<usize>, String)> = vec![(None, String::new())];
    while let Some((scope, prefix)) = todo.pop() {
        let units: Vec<Unit> = units_in(n, &spec.nested, scope)
            .into_iter()
            .filter(|u| !matches!(*u, Unit::Layer(i) if is_operation(&spec.layers[i])))
            .collect();
        let paths = class_paths(units.iter().map(|u| match *u {
            Unit::Layer(i) => spec.layers[i].class_name(),
            Unit::Nested(k) => spec.nested[k].class.as_str(),
        }));
        for (u, p) in units.iter().zip(paths) {
            let p = if prefix.is_empty() {
                p
            } else {
                format!("{prefix}/{p}")
            };
            match *u {
                Unit::Layer(i) => layers[i] = p,
                Unit::Nested(k) => {
                    nested[k] = p.clone();
                    todo.push((Some(k), p));
                }
            }
        }
    }
    (layers, nested)
}

/// `layer_paths` for a model whose `layers` (as Keras lists them) have these class names.
pub fn class_paths<'a>(classes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    classes
        .into_iter()
        .map(|class| {
            let base = snake_case(class);
            let n = used.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                format!("layers/{base}")
            } else {
                format!("layers/{base}_{}", *n - 1)
            }
        })
        .collect()
}

/// The most bytes a weights file of this architecture may hold: its values as float64, four times
/// over (the weights and up to three optimizer slots each), plus HDF5's own structures.
fn weights_limit(spec: &ModelSpec) -> u64 {
    let params: u64 = (0..spec.layers.len())
        .map(|i| spec.param_count(i) as u64)
        .sum();
    params * 8 * 4 + H5_OVERHEAD + H5_OVERHEAD_PER_LAYER * spec.layers.len() as u64
}

// ---------------------------------------------------------------------------------------------
// HDF5 file images (files in memory)

/// A name no other in-memory file of this process has (libhdf5 identifies open files by name).
fn image_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "keras-transfer-image-{}-{}.h5",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// HDF5 bytes opened read-only in memory; the file reads `bytes` in place, so it borrows them.
struct ImageFile<'a> {
    file: hdf5::File,
    _bytes: std::marker::PhantomData<&'a [u8]>,
}

impl std::ops::Deref for ImageFile<'_> {
    type Target = hdf5::File;
    fn deref(&self) -> &hdf5::File {
        &self.file
    }
}

/// The buffer libhdf5's file-image callbacks hand out, and how many property lists and open
/// files hold it: libhdf5 reads the caller's bytes where they are instead of copying them twice
/// (into the property list, then into the core driver), as `H5LTopen_file_image` does with
/// `H5LT_FILE_IMAGE_DONT_COPY | H5LT_FILE_IMAGE_DONT_RELEASE`. Read-only: nothing writes to it,
/// and it is never freed here (the caller owns it).
struct Shared {
    ptr: *mut std::ffi::c_void,
    size: usize,
    /// Property lists holding the buffer, files holding it, holders of this record.
    lists: usize,
    files: usize,
    holders: usize,
}

mod image_callbacks {
    use super::Shared;
    use hdf5_sys::h5fd::H5FD_file_image_op_t::{self, *};
    use std::ffi::c_void;

    /// SAFETY (all callbacks): libhdf5 passes back the `udata` pointer given to it, a live
    /// `Box<Shared>` until `udata_free` drops the last holder.
    fn shared<'a>(udata: *mut c_void) -> &'a mut Shared {
        unsafe { &mut *(udata as *mut Shared) }
    }

    pub(super) extern "C" fn malloc(
        size: usize,
        op: H5FD_file_image_op_t,
        udata: *mut c_void,
    ) -> *mut c_void {
        let s = shared(udata);
        if size != s.size {
            return std::ptr::null_mut();
        }
        match op {
            H5FD_FILE_IMAGE_OP_PROPERTY_LIST_SET | H5FD_FILE_IMAGE_OP_PROPERTY_LIST_COPY => {
                s.lists += 1;
                s.ptr
            }
            H5FD_FILE_IMAGE_OP_FILE_OPEN => {
                s.files += 1;
                s.ptr
            }
            _ => std::ptr::null_mut(),
        }
    }

    pub(super) extern "C" fn memcpy(
        dest: *mut c_void,
        src: *const c_void,
        size: usize,
        op: H5FD_file_image_op_t,
        udata: *mut c_void,
    ) -> *mut c_void {
        let s = shared(udata);
        let ok = matches!(
            op,
            H5FD_FILE_IMAGE_OP_PROPERTY_LIST_SET
                | H5FD_FILE_IMAGE_OP_PROPERTY_LIST_COPY
                | H5FD_FILE_IMAGE_OP_FILE_OPEN
        );
        // The one buffer "copied" onto itself: nothing to do.
        if ok && dest == s.ptr && std::ptr::eq(src, s.ptr) && size == s.size {
            dest
        } else {
            std::ptr::null_mut()
        }
    }

    pub(super) extern "C" fn realloc(
        _ptr: *mut c_void,
        _size: usize,
        _op: H5FD_file_image_op_t,
        _udata: *mut c_void,
    ) -> *mut c_void {
        // Read-only: the image never grows.
        std::ptr::null_mut()
    }

    pub(super) extern "C" fn free(
        ptr: *mut c_void,
        op: H5FD_file_image_op_t,
        udata: *mut c_void,
    ) -> hdf5_sys::h5::herr_t {
        let s = shared(udata);
        if ptr != s.ptr {
            return -1;
        }
        let count = match op {
            H5FD_FILE_IMAGE_OP_PROPERTY_LIST_CLOSE => &mut s.lists,
            H5FD_FILE_IMAGE_OP_FILE_CLOSE => &mut s.files,
            _ => return -1,
        };
        if *count == 0 {
            return -1;
        }
        // The caller's buffer is released by the caller.
        *count -= 1;
        0
    }

    pub(super) extern "C" fn udata_copy(udata: *mut c_void) -> *mut c_void {
        shared(udata).holders += 1;
        udata
    }

    pub(super) extern "C" fn udata_free(udata: *mut c_void) -> hdf5_sys::h5::herr_t {
        let s = shared(udata);
        s.holders = s.holders.saturating_sub(1);
        if s.holders == 0 {
            // SAFETY: the record was made by `Box::into_raw` in `open_image` and this was its
            // last holder.
            drop(unsafe { Box::from_raw(udata as *mut Shared) });
        }
        0
    }
}

/// Opens HDF5 bytes read-only from memory (libhdf5's core driver with a file image read in place;
/// nothing touches the disk).
fn open_image(bytes: &[u8]) -> hdf5::Result<ImageFile<'_>> {
    use hdf5_sys::h5fd::H5FD_file_image_callbacks_t;
    let fapl = hdf5::plist::FileAccess::build()
        .core_options(1 << 16, false)
        .fclose_degree(hdf5::file::FileCloseDegree::Strong)
        .finish()?;
    let name = std::ffi::CString::new(image_name()).map_err(|e| e.to_string())?;
    let shared = Box::into_raw(Box::new(Shared {
        ptr: bytes.as_ptr() as *mut std::ffi::c_void,
        size: bytes.len(),
        lists: 0,
        files: 0,
        holders: 1,
    }));
    let callbacks = H5FD_file_image_callbacks_t {
        image_malloc: Some(image_callbacks::malloc),
        image_memcpy: Some(image_callbacks::memcpy),
        image_realloc: Some(image_callbacks::realloc),
        image_free: Some(image_callbacks::free),
        udata_copy: Some(image_callbacks::udata_copy),
        udata_free: Some(image_callbacks::udata_free),
        udata: shared as *mut std::ffi::c_void,
    };
    let file = hdf5::sync::sync(|| {
        // SAFETY: `fapl` is a live property list; libhdf5 copies the callbacks struct and, from
        // here on, owns one hold on `shared` (released through `udata_free`). The image is read
        // in place (the callbacks hand libhdf5 `bytes` itself, never writing to it), and
        // `ImageFile` borrows `bytes` for as long as the file is open; libhdf5 lets go of it when
        // the file and the property lists close (`FileCloseDegree::Strong`).
        let set = unsafe {
            hdf5_sys::h5p::H5Pset_file_image_callbacks(fapl.id(), &callbacks as *const _ as *mut _)
        };
        let set = hdf5::h5check(set).and_then(|_| {
            hdf5::h5check(unsafe {
                hdf5_sys::h5p::H5Pset_file_image(
                    fapl.id(),
                    bytes.as_ptr() as *mut std::ffi::c_void,
                    bytes.len(),
                )
            })
        });
        // The property list holds its own copy of the record now (`udata_copy`).
        image_callbacks::udata_free(shared as *mut std::ffi::c_void);
        set?;
        // SAFETY: a valid C string and property list; the returned id is checked before use.
        let id = unsafe {
            hdf5_sys::h5f::H5Fopen(name.as_ptr(), hdf5_sys::h5f::H5F_ACC_RDONLY, fapl.id())
        };
        let id = hdf5::h5check(id)?;
        // SAFETY: `id` is a file id libhdf5 just opened; the `File` takes ownership of it.
        unsafe { hdf5::from_id::<hdf5::File>(id) }
    })?;
    Ok(ImageFile {
        file,
        _bytes: std::marker::PhantomData,
    })
}

/// Builds an HDF5 file in memory with `build` and returns its bytes.
fn make_image(build: impl FnOnce(&hdf5::File) -> hdf5::Result<()>) -> hdf5::Result<Vec<u8>> {
    let file = hdf5::File::with_options()
        .with_fapl(|p| {
            p.core_options(1 << 16, false)
                .fclose_degree(hdf5::file::FileCloseDegree::Strong)
        })
        .create(image_name())?;
    build(&file)?;
    file.flush()?;
    let bytes = hdf5::sync::sync(|| -> hdf5::Result<Vec<u8>> {
        // SAFETY: a live file id; the first call only asks for the size, the second fills a buffer
        // of exactly that size.
        let n = hdf5::h5check(unsafe {
            hdf5_sys::h5f::H5Fget_file_image(file.id(), std::ptr::null_mut(), 0)
        })?;
        let mut buf = vec![0u8; n as usize];
        let got = hdf5::h5check(unsafe {
            hdf5_sys::h5f::H5Fget_file_image(
                file.id(),
                buf.as_mut_ptr() as *mut std::ffi::c_void,
                buf.len(),
            )
        })?;
        buf.truncate(got as usize);
        Ok(buf)
    })?;
    file.close()?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// The weights file (`model.weights.h5`, `x.weights.h5`)

/// Opens a Keras 3 weights file given as bytes. `ctx` names the file in errors.
fn open_weights_image<'a>(ctx: &Ctx, bytes: &'a [u8]) -> Result<ImageFile<'a>> {
    if !bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Err(ctx.not_keras("not an HDF5 file (no HDF5 signature at its start)"));
    }
    open_image(bytes).map_err(|e| ctx.hdf5("cannot open the weights", e))
}

/// Reads the layers of `spec` from a Keras 3 weights file, checking every group, count and shape
/// against the architecture first. `ctx` names the file in errors.
fn read_layer_weights(ctx: &Ctx, file: &hdf5::File, spec: &ModelSpec) -> Result<Vec<LayerWeights>> {
    let mut weights = Vec::with_capacity(spec.layers.len());
    let fan_ins = spec.fan_ins();
    for ((i, l), path) in spec.layers.iter().enumerate().zip(layer_paths(spec)) {
        let specs = l.weights(fan_ins[i]);
        if path.is_empty() {
            // An operation on tensors: no weights, no group.
            weights.push(LayerWeights::new());
            continue;
        }
        // Keras's fallback for files of Keras 2.13: `layers` was `_layer_checkpoint_dependencies`.
        let what = format!("layer '{}'", l.name());
        let path = if !h5_guard::exists(ctx, file, &path, &what)?
            && h5_guard::exists(ctx, file, LEGACY_LAYERS, &what)?
        {
            path.replacen("layers", LEGACY_LAYERS, 1)
        } else {
            path
        };
        let vars_path = format!("{path}/vars");
        let vars = h5_guard::group(ctx, file, &vars_path)?;
        let stored = match &vars {
            Some(g) => g
                .member_names()
                .map_err(|e| ctx.hdf5(&format!("group '{vars_path}'"), e))?
                .len(),
            None => 0,
        };
        if stored != specs.len() {
            return Err(ctx.not_keras(format!(
                "the {} layer '{}' has {} weights, the file holds {stored} at '{vars_path}'",
                l.class_name(),
                l.name(),
                specs.len()
            )));
        }
        let mut lw = LayerWeights::new();
        if let Some(g) = &vars {
            for (k, w) in specs.iter().enumerate() {
                let values = read_layer_weight(ctx, g, l, &k.to_string(), w, spec.dtype)?;
                lw.push(values);
            }
        }
        weights.push(lw);
    }
    crate::keras::limits::check_finite(spec, &weights).map_err(|e| ctx.not_keras(e))?;
    Ok(weights)
}

fn write_name(g: &hdf5::Group, name: &str) -> hdf5::Result<()> {
    let v: VarLenUnicode = name
        .parse()
        .map_err(|e| hdf5::Error::from(format!("{e:?}")))?;
    g.new_attr::<VarLenUnicode>()
        .create("name")?
        .write_scalar(&v)
}

/// The name Keras gives the optimizer's `vars` group: the optimizer config's `name`.
fn optimizer_name(compile: &Value) -> String {
    let o = &compile["optimizer"];
    o.pointer("/config/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| o["class_name"].as_str().map(str::to_lowercase))
        .unwrap_or_else(|| "optimizer".into())
}

/// A Keras 3 weights file as bytes: every layer's `vars` group (with its `name` attribute, empty
/// for layers without weights), the model's own empty `vars`, and, for a compiled model, the
/// optimizer's variables (`write_optimizer_vars`).
fn weights_image(m: &KerasModel, model_config: &Value, compile: Option<&Value>) -> Result<Vec<u8>> {
    let spec = &m.spec;
    let image = make_image(|f| {
        let layers = f.create_group("layers")?;
        drop(layers);
        let (paths, nested_paths) = all_paths(spec);
        for (m, path) in spec.nested.iter().zip(&nested_paths) {
            let g = f.create_group(path)?;
            write_name(&g.create_group("vars")?, &m.name)?;
            g.create_group("layers")?;
        }
        for ((i, l), path) in spec.layers.iter().enumerate().zip(paths) {
            if path.is_empty() {
                continue; // an operation on tensors
            }
            let vars = f.create_group(&path)?.create_group("vars")?;
            write_name(&vars, l.name())?;
            for (k, (w, values)) in l
                .weights(spec.fan_in(i))
                .iter()
                .zip(&m.weights[i])
                .enumerate()
            {
                write_layer_weight(&vars, &k.to_string(), l, w, values, spec.dtype)?;
            }
        }
        if let Some(c) = compile {
            write_optimizer_vars(f, m, c)?;
        }
        let top = f.create_group("vars")?;
        let model_name = model_config
            .pointer("/config/name")
            .and_then(Value::as_str)
            .unwrap_or("sequential");
        write_name(&top, model_name)
    });
    image.map_err(|e| Error::Internal(format!("building the weights file in memory: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The optimizer's variables (`optimizer/vars/<i>`)

/// Where a Keras 3 weights file keeps the optimizer's variables, `optimizer.variables` in order
/// (Keras's `save_own_variables`: `0` the iteration count, `1` the learning rate, then the slots).
const OPTIMIZER_VARS: &str = "optimizer/vars";

/// Reads the optimizer's variables of a Keras 3 weights file, checked first against what the
/// compiled optimizer builds on this architecture (`optimizer_layout`): their count, the optimizer's
/// name, each variable's shape and type, and the learning rate. A mismatch is an error naming the
/// file and the variable (Keras's `load_model` would skip such a state with a warning and train
/// afresh; this tool never resets silently). `None` when the file holds no optimizer variables, or
/// only those of an optimizer compiled but never built (iteration 0: a fresh optimizer, as Keras
/// loads it). tf.keras 2's layout (`keras2`) is read by `tfkeras2_optimizer`. `Some(Err(why))`
/// for a state Keras does not restore either: a model that is not compiled (or with settings this tool cannot train), or an
/// optimizer built before layers were frozen; with `strict` false (a `.weights.h5` file put into
/// another model's architecture, as `model.load_weights` does) also for the variables of another
/// optimizer or count, which Keras skips.
fn read_optimizer_vars(
    ctx: &Ctx,
    file: &hdf5::File,
    spec: &ModelSpec,
    compile: Option<std::result::Result<Compile, String>>,
    keras2: bool,
    strict: bool,
) -> Result<Option<std::result::Result<OptimizerState, String>>> {
    let Some(g) = h5_guard::group(ctx, file, OPTIMIZER_VARS)? else {
        return Ok(None);
    };
    let n = g
        .member_names()
        .map_err(|e| ctx.hdf5(&format!("group '{OPTIMIZER_VARS}'"), e))?
        .len();
    if keras2 {
        // tf.keras 2's layout: `0` its `iteration:0`, then its slots (no learning rate).
        let mut open = |i: usize| {
            let what = format!("optimizer variable '{OPTIMIZER_VARS}/{i}'");
            h5_guard::dataset(ctx, &g, &i.to_string(), &what)?
                .ok_or_else(|| ctx.not_keras(format!("{what} is missing or not a dataset")))
        };
        return tfkeras2_optimizer::read_state(
            ctx,
            spec,
            compile,
            OPTIMIZER_VARS,
            None,
            n,
            &mut open,
        );
    }
    let opt = match compile {
        None => {
            return Ok(Some(Err(format!(
                "it holds {n} optimizer variables but no compile settings"
            ))));
        }
        Some(Err(e)) => return Ok(Some(Err(format!("compiled with {e}")))),
        Some(Ok(c)) => c.optimizer,
    };
    let want = keras_optimizer_name(&opt);
    if let (Some(saved), Some(_)) = (read_string(ctx, &g, "name")?, &opt.name)
        && saved != want
    {
        let why = format!(
            "'{OPTIMIZER_VARS}' holds the variables of optimizer '{saved}', but the model is compiled with {} '{want}'",
            opt.keras_class()
        );
        return if strict {
            Err(ctx.not_keras(why))
        } else {
            Ok(Some(Err(why)))
        };
    }
    let layout = match saved_count(spec, &opt, n, OPTIMIZER_VARS)? {
        SavedCount::Fits(layout) => layout,
        // model.compile() then save(): load_model builds the optimizer afresh.
        SavedCount::NotBuilt if read_iterations(ctx, &g)? == 0 => return Ok(None),
        SavedCount::BuiltBeforeFreeze(why) => return Ok(Some(Err(why))),
        SavedCount::NotBuilt => {
            return Err(ctx.not_keras(format!(
                "'{OPTIMIZER_VARS}' holds {n} variables after steps were taken; {} on this model has {}",
                opt.keras_class(),
                optimizer_layout(spec, &opt).len()
            )));
        }
        SavedCount::Other(why) if strict => return Err(ctx.not_keras(why)),
        SavedCount::Other(why) => return Ok(Some(Err(why))),
    };
    let mut state = OptimizerState {
        iterations: read_iterations(ctx, &g)?,
        ..OptimizerState::default()
    };
    for (i, (name, shape)) in layout.iter().enumerate().skip(1) {
        // The learning rate is made in Keras's floatx (float32 or float64, whatever the model's
        // dtype); the slots take their variable's dtype, the model's.
        let lr_var = name == "learning_rate" && i == 1;
        let (values, found) = read_optimizer_var(ctx, &g, i, name, shape)?;
        if !lr_var && found != spec.dtype {
            return Err(ctx.not_keras(format!(
                "optimizer variable '{OPTIMIZER_VARS}/{i}' ({name}) holds {} values, but the model is {}",
                found.keras_name(),
                spec.dtype.keras_name()
            )));
        }
        if lr_var {
            // The compiled rate as the variable's dtype holds it.
            if let LearningRate::Constant(lr) = opt.learning_rate
                && values[0] != found.round(lr)
            {
                return Err(ctx.not_keras(format!(
                    "optimizer variable '{OPTIMIZER_VARS}/1' (learning_rate) is {}, but the compiled learning rate is {lr}",
                    values[0]
                )));
            }
            state.learning_rate = Some(values[0]);
        } else {
            state.variables.push((name.clone(), values));
        }
    }
    Ok(Some(Ok(state)))
}

/// `optimizer/vars/0`: Keras's `iterations`, an integer scalar.
fn read_iterations(ctx: &Ctx, g: &hdf5::Group) -> Result<u64> {
    let what = format!("optimizer variable '{OPTIMIZER_VARS}/0' (iteration)");
    let ds = h5_guard::dataset(ctx, g, "0", &what)?
        .ok_or_else(|| ctx.not_keras(format!("{what} is missing or not a dataset")))?;
    step_count(ctx, &ds, &what)
}

/// `optimizer/vars/<i>`, a float variable of `shape`, checked before it is read.
fn read_optimizer_var(
    ctx: &Ctx,
    g: &hdf5::Group,
    i: usize,
    name: &str,
    shape: &[usize],
) -> Result<(Vec<f64>, FloatDtype)> {
    let what = format!("optimizer variable '{OPTIMIZER_VARS}/{i}' ({name})");
    let ds = h5_guard::dataset(ctx, g, &i.to_string(), &what)?
        .ok_or_else(|| ctx.not_keras(format!("{what} is missing or not a dataset")))?;
    if ds.shape() != shape {
        return Err(ctx.not_keras(format!(
            "{what} has shape {:?}, the compiled optimizer needs {shape:?} on this model",
            ds.shape()
        )));
    }
    let found = float_dtype(ctx, &ds, &what)?;
    let values = ds.read_raw::<f64>().map_err(|e| ctx.hdf5(&what, e))?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(ctx.not_keras(format!("{what} holds NaN or infinite values")));
    }
    Ok((values, found))
}

/// Writes `optimizer/vars`: `m`'s optimizer state when `archived_state` keeps it (iteration,
/// learning rate, each slot in the variable's shape), else a freshly compiled optimizer's
/// (iteration 0 and the learning rate), as Keras's `save_own_variables` lays them out.
fn write_optimizer_vars(f: &hdf5::File, m: &KerasModel, compile: &Value) -> hdf5::Result<()> {
    let vars = f.create_group("optimizer")?.create_group("vars")?;
    write_name(&vars, &optimizer_name(compile))?;
    let opt = m.optimizer();
    let state = archived_state(m).ok().flatten();
    vars.new_dataset::<i64>()
        .shape(())
        .create("0")?
        .write_scalar(&(state.map_or(0, |s| s.iterations) as i64))?;
    // The learning rate and the slots in the model's dtype, as Keras's optimizer keeps them.
    let dtype = m.spec.dtype;
    let lr = match (state, &opt) {
        (Some(s), _) => s.learning_rate,
        (None, Some(o)) => o.has_learning_rate_variable().then(|| {
            o.learning_rate
                .constant_f64()
                .map_or(f64::from(o.learning_rate()), |lr| dtype.round(lr))
        }),
        (None, None) => m.learning_rate,
    };
    let mut k = 1;
    if let Some(lr) = lr {
        match dtype {
            FloatDtype::Float32 => vars
                .new_dataset::<f32>()
                .shape(())
                .create("1")?
                .write_scalar(&(lr as f32))?,
            FloatDtype::Float64 => vars
                .new_dataset::<f64>()
                .shape(())
                .create("1")?
                .write_scalar(&lr)?,
        }
        k = 2;
    }
    if let (Some(s), Some(o)) = (state, &opt) {
        let slots = o.slot_variables(&trainable_variables(&m.spec));
        for ((_, shape), (_, values)) in slots.iter().zip(&s.variables) {
            write_values(&vars, &k.to_string(), shape, values, dtype)?;
            k += 1;
        }
    }
    Ok(())
}

/// Checks the weights hold one value list per weight of the architecture, of the right sizes.
fn check_weights(m: &KerasModel, target: &Path) -> Result<()> {
    let spec = &m.spec;
    let fan_ins = spec.fan_ins();
    let ok = m.weights.len() == spec.layers.len()
        && spec.layers.iter().enumerate().all(|(i, l)| {
            let s = l.weights(fan_ins[i]);
            s.len() == m.weights[i].len()
                && s.iter().zip(&m.weights[i]).all(|(w, v)| w.len() == v.len())
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "{}: the weights do not fit the architecture",
            target.display()
        )))
    }
}

/// Reads a file's bytes, refusing anything that is not a regular file or is larger than `limit`.
fn read_bounded(ctx: &Ctx, path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(ctx.not_keras(format!("is a directory, expected {what}")));
    }
    if !meta.is_file() {
        return Err(ctx.not_keras(format!(
            "is not a regular file (a FIFO or device?), expected {what}"
        )));
    }
    if meta.len() > limit {
        return Err(ctx.not_keras(format!(
            "is {} bytes, more than the {limit} bytes {what} of this architecture can take",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(ctx.not_keras("the file is empty"));
    }
    Ok(bytes)
}

/// Reads a standalone Keras 3 weights file (`model.save_weights("x.weights.h5")`) into the
/// architecture of `m`, as `model.load_weights` does: the layers by Keras's layout
/// (`layers/<path>/vars/<i>`), and the optimizer's variables when the file holds those `m`'s
/// compiled optimizer builds (otherwise `m`'s own optimizer state stays, as Keras skips them).
pub fn load_weights_h5(path: &Path, m: &KerasModel) -> Result<KerasModel> {
    let ctx = Ctx { path };
    let bytes = read_bounded(&ctx, path, weights_limit(&m.spec), "a .weights.h5 file")?;
    let file = open_weights_image(&ctx, &bytes)?;
    let weights = read_layer_weights(&ctx, &file, &m.spec)?;
    let state = read_optimizer_vars(&ctx, &file, &m.spec, m.compile(), false, false)?;
    Ok(KerasModel {
        weights,
        optimizer_state: match state {
            Some(Ok(s)) => Some(Ok(s)),
            _ => m.optimizer_state.clone(),
        },
        ..m.clone()
    })
}

/// Writes the weights of `m` as a Keras 3 weights file that `model.load_weights` accepts, atomically.
pub fn save_weights_h5(path: &Path, m: &KerasModel) -> Result<()> {
    check_weights(m, path)?;
    let cfg = archive_model_config(&m.spec);
    let compile = compile_config(m);
    write_bytes_atomic(path, &weights_image(m, &cfg, compile.as_ref())?)
}

// ---------------------------------------------------------------------------------------------
// The archive

/// config.json's model: the Keras 3 `model_config`, with a Functional model's class named as
/// `saving_lib` names it (its deserialiser refuses the short `keras.Functional` that legacy `.h5`
/// loading accepts; Keras writes `keras.src.models.functional` and `registered_name` `Functional`).
fn archive_model_config(spec: &ModelSpec) -> Value {
    let mut cfg = config::model_config(spec, Format::Keras3);
    if cfg["class_name"] == "Functional" && cfg["module"] == "keras" {
        cfg["module"] = json!("keras.src.models.functional");
        cfg["registered_name"] = json!("Functional");
    }
    cfg
}

/// The `compile_config` of config.json for the model's optimizer: Keras 3's `training_config`
/// (what `config::training_config` writes) with `optimizer_config` as a serialised `optimizer`.
fn compile_config(m: &KerasModel) -> Option<Value> {
    let mut t: Value = serde_json::from_str(&m.training_config_for(Format::Keras3)?).ok()?;
    let obj = t.as_object_mut()?;
    // saving_lib deserialises a loss or metric object by its module (a legacy training_config's
    // `{"class_name": "Huber", ...}` is refused: "Could not locate class 'Huber'").
    if let Some(loss) = obj.get_mut("loss") {
        with_module(loss, "keras.losses");
    }
    if let Some(Value::Array(metrics)) = obj.get_mut("metrics") {
        metrics
            .iter_mut()
            .for_each(|m| with_module(m, "keras.metrics"));
    }
    let opt = obj.remove("optimizer_config")?;
    obj.insert(
        "optimizer".into(),
        json!({"module": "keras.optimizers", "class_name": opt["class_name"],
               "config": opt["config"], "registered_name": null}),
    );
    Some(t)
}

/// A serialised Keras object (`{"class_name": ..., "config": ...}`) as saving_lib writes it, with
/// its `module` and `registered_name`; strings (`"mse"`) stay as they are.
fn with_module(v: &mut Value, module: &str) {
    if let Some(o) = v.as_object_mut()
        && o.contains_key("class_name")
        && !o.contains_key("module")
    {
        o.insert("module".into(), json!(module));
        o.entry("registered_name").or_insert(Value::Null);
    }
}

/// The reverse: a config.json `compile_config` as a legacy `training_config`, so that it is read by
/// the same rules as a `.h5` file's.
fn training_config_of(compile: &Value) -> Value {
    let mut t = compile.clone();
    if let Some(obj) = t.as_object_mut()
        && let Some(opt) = obj.remove("optimizer")
    {
        let opt = match opt {
            Value::String(s) => json!({"class_name": s, "config": {}}),
            o => json!({"class_name": o["class_name"], "config": o["config"]}),
        };
        obj.insert("optimizer_config".into(), opt);
    }
    t
}

/// Now, as Keras writes `date_saved` (in UTC).
fn date_saved() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    utc_stamp(secs)
}

/// `YYYY-mm-dd@HH:MM:SS` (UTC) of a Unix time.
fn utc_stamp(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}@{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The bytes of a `.keras` archive of `m`: metadata.json, config.json (the Keras 3 model config with
/// `compile_config` when the model has an optimizer) and model.weights.h5, stored uncompressed in
/// that order, as Keras writes them.
pub fn keras_bytes(m: &KerasModel) -> Result<Vec<u8>> {
    let mut cfg = archive_model_config(&m.spec);
    let compile = compile_config(m);
    if let (Some(c), Some(obj)) = (&compile, cfg.as_object_mut()) {
        obj.insert("compile_config".into(), c.clone());
    }
    let weights = weights_image(m, &cfg, compile.as_ref())?;
    let mut metadata =
        json!({"keras_version": Format::Keras3.keras_version(), "date_saved": date_saved()});
    // The data's names, in keys Keras ignores.
    if let (Some(obj), Some(names)) = (
        metadata.as_object_mut(),
        m.data.as_ref().map(|d| d.to_metadata_json()),
    ) && let Some(n) = names.as_object()
    {
        obj.extend(n.clone());
    }
    let zip_err = |e: zip::result::ZipError| Error::Internal(format!("writing the archive: {e}"));
    let io_err = |e: std::io::Error| Error::Internal(format!("writing the archive: {e}"));
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(weights.len() as u64 >= u64::from(u32::MAX));
    for (name, bytes) in [
        (METADATA_JSON, metadata.to_string().into_bytes()),
        (CONFIG_JSON, cfg.to_string().into_bytes()),
        (WEIGHTS_H5, weights),
    ] {
        w.start_file(name, opts).map_err(zip_err)?;
        w.write_all(&bytes).map_err(io_err)?;
    }
    Ok(w.finish().map_err(zip_err)?.into_inner())
}

/// Writes `m` as a Keras 3 `.keras` archive, atomically.
pub fn save_keras(path: &Path, m: &KerasModel) -> Result<()> {
    check_weights(m, path)?;
    // Keras 3 rebuilds the compile settings of an archive, so ones this tool does not understand
    // cannot be passed on as they are (an .h5 file keeps them as text).
    if let Some(Err(e)) = m.compile() {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            found: format!(
                "compile settings ({e}) that cannot be written into a Keras 3 archive; write .h5"
            ),
        });
    }
    write_bytes_atomic(path, &keras_bytes(m)?)
}

/// True for a member name that could point outside a folder it were extracted to.
fn unsafe_name(name: &str) -> bool {
    name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.split('/').any(|c| c == "..")
        || name.get(1..2) == Some(":")
}

/// Reads member `name` of at most `limit` bytes (checked against the declared size before anything
/// is decompressed, and again while reading, whatever the header claims).
fn read_member<R: Read + Seek>(
    ctx: &Ctx,
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>> {
    let mut f = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ctx.not_keras(format!("archive member '{name}': {e}"))),
    };
    let declared = f.size();
    if declared > limit {
        return Err(ctx.not_keras(format!(
            "archive member '{name}' declares {declared} bytes, more than the {limit} bytes allowed (a zip bomb?)"
        )));
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ctx.not_keras(format!("archive member '{name}' cannot be read: {e}")))?;
    if bytes.len() as u64 != declared {
        return Err(ctx.not_keras(format!(
            "archive member '{name}' declares {declared} bytes but holds {} or more",
            bytes.len()
        )));
    }
    Ok(Some(bytes))
}

fn json_member(ctx: &Ctx, bytes: &[u8], name: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| ctx.not_keras(format!("{name} is not JSON ({e})")))
}

/// Opens a Keras 3 `.keras` archive (written by Keras or this tool) without extracting it: the model
/// from config.json, its compile settings from `compile_config`, the weights from the in-memory
/// model.weights.h5 by Keras's layout.
pub fn load_keras(path: &Path) -> Result<KerasModel> {
    let ctx = Ctx { path };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(ctx.not_keras("is a directory, expected a .keras file"));
    }
    if !meta.is_file() {
        return Err(
            ctx.not_keras("is not a regular file (a FIFO or device?), expected a .keras file")
        );
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 4];
    let n = (&file)
        .take(4)
        .read(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Err(ctx.not_keras("the file is empty"));
    }
    if head.starts_with(b"\x89HDF") {
        return Err(ctx.not_keras(
            "an HDF5 file named .keras; rename it to .h5 (a .keras file is a zip archive)",
        ));
    }
    if &head[..n] != b"PK\x03\x04" {
        return Err(ctx.not_keras("not a zip archive (a .keras file is one)"));
    }
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| ctx.not_keras(format!("not a readable zip archive: {e}")))?;
    if zip.len() > MAX_MEMBERS {
        return Err(ctx.not_keras(format!("the archive lists {} members", zip.len())));
    }
    for i in 0..zip.len() {
        let name = zip
            .name_for_index(i)
            .and_then(|r| r.ok())
            .map(|n| n.into_owned())
            .ok_or_else(|| ctx.not_keras(format!("archive member {i} has no readable name")))?;
        if unsafe_name(&name) {
            return Err(ctx.not_keras(format!(
                "archive member '{}' has an unsafe name (absolute or with '..')",
                name.escape_default()
            )));
        }
    }
    let config_bytes = read_member(&ctx, &mut zip, CONFIG_JSON, MAX_JSON)?
        .ok_or_else(|| ctx.not_keras(format!("the archive has no {CONFIG_JSON}")))?;
    let root = json_member(&ctx, &config_bytes, CONFIG_JSON)?;
    let text = std::str::from_utf8(&config_bytes)
        .map_err(|_| ctx.not_keras(format!("{CONFIG_JSON} is not UTF-8")))?;
    let parsed = config::parse_model_config(text).map_err(|e| ctx.config_error(e))?;
    let spec = parsed.spec;
    let (keras_version, data) = match read_member(&ctx, &mut zip, METADATA_JSON, MAX_JSON)? {
        Some(b) => {
            let md = json_member(&ctx, &b, METADATA_JSON)?;
            if !md.is_object() {
                return Err(ctx.not_keras(format!("{METADATA_JSON} is not a JSON object")));
            }
            let data = crate::data::DataSchema::from_metadata_json(&md)
                .map_err(|e| ctx.not_keras(format!("{METADATA_JSON}: {e}")))?;
            (
                md["keras_version"].as_str().unwrap_or_default().to_string(),
                data,
            )
        }
        None => (String::new(), None),
    };
    let training_config = match root.get("compile_config") {
        None | Some(Value::Null) => None,
        // What Keras 3 writes for a model that was never compiled.
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(c) => Some(training_config_of(c).to_string()),
    };
    let lr_of = match spec.dtype {
        FloatDtype::Float32 => config::training_lr,
        FloatDtype::Float64 => config::training_lr_exact,
    };
    let learning_rate = training_config.as_deref().and_then(lr_of);
    let weights_bytes = match read_member(&ctx, &mut zip, WEIGHTS_H5, weights_limit(&spec))? {
        Some(b) => b,
        None if zip.index_for_name("model.weights.npz").is_some() => {
            return Err(ctx.unsupported(
                "weights stored as model.weights.npz; save with the default weights_format='h5'",
            ));
        }
        None => return Err(ctx.not_keras(format!("the archive has no {WEIGHTS_H5}"))),
    };
    let member = format!("{} [{WEIGHTS_H5}]", path.display());
    let wctx = Ctx {
        path: Path::new(&member),
    };
    let file = open_weights_image(&wctx, &weights_bytes)?;
    let weights = read_layer_weights(&wctx, &file, &spec)?;
    let compile_settings = training_config.map(CompileSettings::parse);
    let optimizer_state = read_optimizer_vars(
        &wctx,
        &file,
        &spec,
        compile_settings.as_ref().map(CompileSettings::result),
        keras_version.starts_with("2."),
        true,
    )?;
    Ok(KerasModel {
        spec,
        weights,
        keras_version,
        backend: String::new(),
        format: Format::Keras3,
        learning_rate,
        compile_settings,
        optimizer_state,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_are_calendar_dates() {
        // Expected values: `date -u -d @SECS +%Y-%m-%d@%H:%M:%S`.
        for (secs, want) in [
            (0, "1970-01-01@00:00:00"),
            (951_782_400, "2000-02-29@00:00:00"),
            (1_700_000_000, "2023-11-14@22:13:20"),
            (4_102_444_799, "2099-12-31@23:59:59"),
        ] {
            assert_eq!(utc_stamp(secs), want, "{secs}");
        }
    }

    #[test]
    fn snake_case_is_keras_naming() {
        // Expected values: keras.src.utils.naming.to_snake_case on these names.
        for (class, snake) in [
            ("Dense", "dense"),
            ("BatchNormalization", "batch_normalization"),
            ("LayerNormalization", "layer_normalization"),
            ("InputLayer", "input_layer"),
            ("Dropout", "dropout"),
            ("LeakyReLU", "leaky_re_lu"),
            ("PReLU", "p_re_lu"),
            ("ReLU", "re_lu"),
            ("ABCDef", "abc_def"),
            ("HDF5Layer", "hdf5_layer"),
        ] {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }
}
