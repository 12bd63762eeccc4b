//! `model.h5` on disk: Keras's legacy HDF5 layout (docs/keras-files.md), read by Keras's own rules (architecture
//! from `model_config`, weights matched by order) and written in either dialect, through libhdf5.
//!
//! Every declared size is checked against the config before any data is read, and files are written
//! to a temporary file beside the target, then renamed.

use crate::data::DataSchema;
use crate::data::schema::{CLASSES_KEY, FEATURES_KEY, LABEL_KEY, MEANS_KEY};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::keras::config::{self, Format};
use crate::keras::h5_guard::{self, Ctx};
use crate::keras::h5_values::float_dtype;
use crate::keras::limits::{MAX_ATTRIBUTE, MAX_STRINGS};
use crate::keras::model::{CompileSettings, KerasModel};
use crate::keras::tfkeras2_optimizer;
use crate::model::nested::{self, Unit};
use crate::model::{FloatDtype, LayerWeights, ModelKind, ModelSpec};
use crate::model::{LayerSpec, WeightSpec};
use crate::train::optimizer::trainable_variables;
use crate::train::{Compile, OptimizerSpec, OptimizerState};
use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Attribute, Dataset, Group, Location};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Longest string attribute read (a `model_config` of a very large model is well below this).
const MAX_STRING: usize = 1 << 20;

const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Checks what the path is before libhdf5 sees it: a regular file that starts with the HDF5
/// signature (a `.keras` zip, a directory or a FIFO are named as such).
fn precheck(ctx: &Ctx) -> Result<()> {
    let path = ctx.path;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(ctx.not_keras("is a directory, expected a .h5 file"));
    }
    if !meta.is_file() {
        return Err(ctx.not_keras("is not a regular file (a FIFO or device?), expected a .h5 file"));
    }
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut got = 0;
            while got < head.len() {
                match f.read(&mut head[got..])? {
                    0 => break,
                    k => got += k,
                }
            }
            Ok(got)
        })
        .map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Err(ctx.not_keras("the file is empty"));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(
            ctx.unsupported("a Keras 3 .keras zip archive named as HDF5; rename it to .keras")
        );
    }
    if n < 8 || &head != HDF5_SIGNATURE {
        return Err(ctx.not_keras("not an HDF5 file (no HDF5 signature at its start)"));
    }
    Ok(())
}

/// How every file is opened: a strong close (closing the file closes every object in it, so no
/// handle outlives a load or save) and no HDF5 file locking (files are written to a fresh temporary
/// name and renamed, so there is no concurrent writer to guard against; and a lingering lock would
/// otherwise make the next open of the same file fail).
fn file_options() -> hdf5::file::FileBuilder {
    let mut b = hdf5::File::with_options();
    b.with_fapl(|p| {
        p.fclose_degree(hdf5::file::FileCloseDegree::Strong)
            .file_locking(false)
    });
    b
}

/// Reads fixed-length strings through a buffer of `N` bytes per string.
fn read_fixed<const N: usize>(attr: &Attribute, unicode: bool) -> hdf5::Result<Vec<String>> {
    if unicode {
        Ok(attr
            .read_raw::<FixedUnicode<N>>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect())
    } else {
        Ok(attr
            .read_raw::<FixedAscii<N>>()?
            .iter()
            .map(|s| s.as_str().to_string())
            .collect())
    }
}

/// The refusal of a string attribute over `MAX_ATTRIBUTE`.
fn too_long(ctx: &Ctx, name: &str, bytes: usize) -> Error {
    ctx.not_keras(format!(
        "attribute '{name}' holds {bytes} bytes, more than the limit of {} MiB",
        MAX_ATTRIBUTE >> 20
    ))
}

/// Reads a string attribute, scalar or 1-D, in any of HDF5's string encodings. A numeric attribute with
/// no elements (Keras writes an empty float64 array for an empty name list) reads as no strings.
/// A fixed-length attribute's size is checked before it is read; a variable-length one's from the
/// lengths its descriptors declare (`h5_vlen`), before libhdf5 reads the strings, and again after.
fn read_strings(ctx: &Ctx, loc: &Location, name: &str) -> Result<Vec<String>> {
    let attr = loc
        .attr(name)
        .map_err(|e| ctx.hdf5(&format!("attribute '{name}'"), e))?;
    let count = attr.size();
    if count > MAX_STRINGS {
        return Err(ctx.not_keras(format!("attribute '{name}' declares {count} strings")));
    }
    let desc = attr
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| ctx.hdf5(&format!("attribute '{name}' type"), e))?;
    let what = format!("attribute '{name}'");
    let vlen_total = |total: usize| -> Result<()> {
        if total > MAX_ATTRIBUTE {
            return Err(too_long(ctx, name, total));
        }
        Ok(())
    };
    // Variable-length strings of type `T`, their total checked before they are copied.
    fn vlen<T: hdf5::H5Type>(
        attr: &Attribute,
        as_str: fn(&T) -> &str,
        check: impl Fn(usize) -> Result<()>,
    ) -> Result<std::result::Result<Vec<String>, hdf5::Error>> {
        let v = match attr.read_raw::<T>() {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        check(v.iter().map(|s| as_str(s).len()).sum())?;
        Ok(Ok(v.iter().map(|s| as_str(s).to_string()).collect()))
    }
    if matches!(
        desc,
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii
    ) && let Some(lengths) = crate::keras::h5_vlen::declared_lengths(&attr)
    {
        // The declared lengths, before libhdf5 reads (and copies) the strings themselves.
        let total = lengths.iter().fold(0u64, |a, &l| a.saturating_add(l));
        vlen_total(usize::try_from(total).unwrap_or(usize::MAX))?;
    }
    let read = match desc {
        TypeDescriptor::VarLenUnicode => vlen::<VarLenUnicode>(&attr, |s| s.as_str(), vlen_total)?,
        TypeDescriptor::VarLenAscii => vlen::<VarLenAscii>(&attr, |s| s.as_str(), vlen_total)?,
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => {
            let unicode = matches!(desc, TypeDescriptor::FixedUnicode(_));
            if n.saturating_mul(count) > MAX_ATTRIBUTE {
                return Err(too_long(ctx, name, n.saturating_mul(count)));
            }
            if n > MAX_STRING {
                return Err(ctx.not_keras(format!(
                    "{what} declares fixed-length strings of {n} bytes, more than the limit of {} MiB (a variable-length string may hold up to {} MiB)",
                    MAX_STRING >> 20,
                    MAX_ATTRIBUTE >> 20
                )));
            }
            match n {
                0..=256 => read_fixed::<256>(&attr, unicode),
                257..=65536 => read_fixed::<65536>(&attr, unicode),
                _ => read_fixed::<MAX_STRING>(&attr, unicode),
            }
        }
        _ if count == 0 => Ok(Vec::new()),
        other => {
            return Err(ctx.not_keras(format!("{what} holds {other:?} values, expected strings")));
        }
    };
    read.map_err(|e| ctx.hdf5(&what, e))
}

/// The one string of a scalar string attribute, or `None` when the attribute is absent.
pub(crate) fn read_string(ctx: &Ctx, loc: &Location, name: &str) -> Result<Option<String>> {
    if !loc
        .attr_names()
        .map_err(|e| ctx.hdf5("attribute list", e))?
        .iter()
        .any(|n| n == name)
    {
        return Ok(None);
    }
    let v = read_strings(ctx, loc, name)?;
    match v.as_slice() {
        [s] => Ok(Some(s.clone())),
        _ => Err(ctx.not_keras(format!(
            "attribute '{name}' holds {} strings, expected one",
            v.len()
        ))),
    }
}

/// A list of strings as Keras writes it (`save_attributes_to_hdf5_group`): the attribute `name`, or,
/// when that would not fit an HDF5 object header, numbered chunks `name0`, `name1`, ... read in
/// order (`load_attributes_from_hdf5_group`). The whole list is bounded as one attribute is.
pub(crate) fn read_string_list(ctx: &Ctx, loc: &Location, name: &str) -> Result<Vec<String>> {
    let attrs = loc
        .attr_names()
        .map_err(|e| ctx.hdf5("attribute list", e))?;
    if attrs.iter().any(|n| n == name) || !attrs.iter().any(|n| *n == format!("{name}0")) {
        return read_strings(ctx, loc, name);
    }
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    for i in 0.. {
        let chunk = format!("{name}{i}");
        if !attrs.contains(&chunk) {
            break;
        }
        let v = read_strings(ctx, loc, &chunk)?;
        bytes += v.iter().map(String::len).sum::<usize>();
        out.extend(v);
        if bytes > MAX_ATTRIBUTE {
            return Err(too_long(ctx, name, bytes));
        }
        if out.len() > MAX_STRINGS {
            return Err(ctx.not_keras(format!(
                "attribute '{name}' declares more than {MAX_STRINGS} strings"
            )));
        }
    }
    Ok(out)
}

/// Reads one weight after checking its declared shape and float type against the config (a float64
/// dataset in a float32 model, or the reverse, is refused: Keras would cast it, this tool never
/// changes a precision silently).
pub(crate) fn read_weight(
    ctx: &Ctx,
    group: &Group,
    layer: &str,
    wname: &str,
    expected: &[usize],
    dtype: FloatDtype,
) -> Result<Vec<f64>> {
    let ds: Dataset = h5_guard::dataset(
        ctx,
        group,
        wname,
        &format!("layer '{layer}' weight '{wname}'"),
    )?
    .ok_or_else(|| {
        ctx.not_keras(format!(
            "layer '{layer}' names weight '{wname}', but no such dataset exists"
        ))
    })?;
    let shape = ds.shape();
    if shape != expected {
        return Err(Error::ShapeMismatch {
            path: ctx.path.to_path_buf(),
            layer: layer.to_string(),
            weight: wname.to_string(),
            expected: expected.to_vec(),
            found: shape,
        });
    }
    let found = float_dtype(ctx, &ds, &format!("layer '{layer}' weight '{wname}'"))?;
    if found != dtype {
        return Err(ctx.not_keras(format!(
            "layer '{layer}' weight '{wname}' holds {} values, but the model's config says {}",
            found.keras_name(),
            dtype.keras_name()
        )));
    }
    ds.read_raw::<f64>()
        .map_err(|e| ctx.hdf5(&format!("layer '{layer}' weight '{wname}'"), e))
}

/// Reads weight `w` of layer `l` from dataset `wname` of `group`: floats of the model's `dtype`, or
/// integers where Keras stores them (`Layer::integer_weight`: Normalization's int64 `count`).
pub(crate) fn read_layer_weight(
    ctx: &Ctx,
    group: &Group,
    l: &LayerSpec,
    wname: &str,
    w: &WeightSpec,
    dtype: FloatDtype,
) -> Result<Vec<f64>> {
    if !l.layer().integer_weight(w.name) {
        return read_weight(ctx, group, l.name(), wname, &w.shape, dtype);
    }
    let what = format!("layer '{}' weight '{wname}'", l.name());
    let ds: Dataset = h5_guard::dataset(ctx, group, wname, &what)?.ok_or_else(|| {
        ctx.not_keras(format!(
            "layer '{}' names weight '{wname}', but no such dataset exists",
            l.name()
        ))
    })?;
    let shape = ds.shape();
    if shape != w.shape {
        return Err(Error::ShapeMismatch {
            path: ctx.path.to_path_buf(),
            layer: l.name().to_string(),
            weight: wname.to_string(),
            expected: w.shape.clone(),
            found: shape,
        });
    }
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| ctx.hdf5(&format!("{what} type"), e))?;
    if !matches!(desc, TypeDescriptor::Integer(_)) {
        return Err(ctx.not_keras(format!("{what} holds {desc:?} values, expected integers")));
    }
    let v = ds.read_raw::<i64>().map_err(|e| ctx.hdf5(&what, e))?;
    Ok(v.into_iter().map(|x| x as f64).collect())
}

/// Writes weight `w` of layer `l` as dataset `name` of `g`: floats of `dtype`, or int64 where
/// Keras stores integers (`Layer::integer_weight`).
pub(crate) fn write_layer_weight(
    g: &Group,
    name: &str,
    l: &LayerSpec,
    w: &WeightSpec,
    values: &[f64],
    dtype: FloatDtype,
) -> hdf5::Result<()> {
    if !l.layer().integer_weight(w.name) {
        return write_values(g, name, &w.shape, values, dtype);
    }
    let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
    g.new_dataset::<i64>()
        .shape(w.shape.as_slice())
        .create(name)?
        .write_raw(&v)
}

/// Writes `values` as the dataset `name` of `shape` in `g`, as float32 or float64 values.
pub(crate) fn write_values(
    g: &Group,
    name: &str,
    shape: &[usize],
    values: &[f64],
    dtype: FloatDtype,
) -> hdf5::Result<()> {
    match dtype {
        FloatDtype::Float32 => {
            let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            g.new_dataset::<f32>()
                .shape(shape)
                .create(name)?
                .write_raw(&v)
        }
        FloatDtype::Float64 => g
            .new_dataset::<f64>()
            .shape(shape)
            .create(name)?
            .write_raw(values),
    }
}

/// Opens a Keras `model.h5` (written by Keras 3, tf.keras 2 or this tool) and reads its architecture
/// and weights by Keras's rules: the weighted layers of `layer_names`, in order, kernel before bias.
pub fn load_h5(path: &Path) -> Result<KerasModel> {
    let ctx = Ctx { path };
    precheck(&ctx)?;
    let file = file_options()
        .open(path)
        .map_err(|e| ctx.hdf5("cannot open the file", e))?;
    let text = read_string(&ctx, &file, "model_config")?
        .ok_or_else(|| ctx.not_keras("no model_config attribute (a weights-only file?)"))?;
    let parsed = config::parse_model_config(&text).map_err(|e| ctx.config_error(e))?;
    let keras_version = read_string(&ctx, &file, "keras_version")?.unwrap_or_default();
    let backend = read_string(&ctx, &file, "backend")?.unwrap_or_default();
    let training_config = read_string(&ctx, &file, "training_config")?;
    let lr_of = match parsed.spec.dtype {
        FloatDtype::Float32 => config::training_lr,
        FloatDtype::Float64 => config::training_lr_exact,
    };
    let learning_rate = training_config.as_deref().and_then(lr_of);
    let data = read_schema(&ctx, &file)?;

    let root: &Group = &file;
    let weights_group = h5_guard::group(&ctx, root, "model_weights")?
        .ok_or_else(|| ctx.not_keras("no 'model_weights' group"))?;
    let layer_names = read_string_list(&ctx, &weights_group, "layer_names")?;
    let mut weighted = Vec::new();
    for lname in &layer_names {
        let g = h5_guard::group(&ctx, &weights_group, lname)?.ok_or_else(|| {
            ctx.not_keras(format!(
                "layer_names lists '{lname}' but there is no such group"
            ))
        })?;
        let wnames = read_string_list(&ctx, &g, "weight_names")?;
        if !wnames.is_empty() {
            weighted.push((lname.clone(), g, wnames));
        }
    }
    let spec = parsed.spec;
    // Keras matches weights to layers by order: the layers that have weights, in order (a nested
    // model is one of them, its weights in `nested_weight_order`).
    let slots = unit_slots(&spec);
    if weighted.len() != slots.len() {
        return Err(ctx.not_keras(format!(
            "layer count mismatch: the config has {} layers with weights, the file holds weights for {} layers",
            slots.len(),
            weighted.len()
        )));
    }
    let fan_ins = spec.fan_ins();
    let mut weights: Vec<LayerWeights> = (0..spec.layers.len())
        .map(|i| vec![Vec::new(); spec.layers[i].weights(fan_ins[i]).len()])
        .collect();
    for ((unit, slot), (lname, g, wnames)) in slots.iter().zip(&weighted) {
        if wnames.len() != slot.len() {
            return Err(ctx.not_keras(match *unit {
                Unit::Layer(i) => {
                    let l = &spec.layers[i];
                    format!(
                        "layer '{lname}' stores {} weights, the config's {} layer '{}' expects {}",
                        wnames.len(),
                        l.class_name(),
                        l.name(),
                        slot.len()
                    )
                }
                Unit::Nested(k) => format!(
                    "layer '{lname}' stores {} weights, the config's nested model '{}' expects {}",
                    wnames.len(),
                    spec.nested[k].name,
                    slot.len()
                ),
            }));
        }
        for (&(i, j), wname) in slot.iter().zip(wnames) {
            let w = &spec.layers[i].weights(fan_ins[i])[j];
            weights[i][j] = read_layer_weight(&ctx, g, &spec.layers[i], wname, w, spec.dtype)?;
        }
    }
    crate::keras::limits::check_finite(&spec, &weights).map_err(|e| ctx.not_keras(e))?;
    let format = if parsed.keras3_dialect {
        Format::Keras3
    } else {
        Format::Universal
    };
    if let Some(d) = &data {
        d.check(spec.input_dim, spec.output_dim()).map_err(|e| {
            ctx.not_keras(format!("its stored data names do not fit the model: {e}"))
        })?;
    }
    let compile_settings = training_config.map(CompileSettings::parse);
    let optimizer_state = read_optimizer_state(
        &ctx,
        root,
        &spec,
        compile_settings.as_ref().map(CompileSettings::result),
    )?;
    Ok(KerasModel {
        spec,
        weights,
        keras_version,
        backend,
        format,
        learning_rate,
        compile_settings,
        optimizer_state,
        data,
    })
}

/// The entries of `model_weights` that hold weights, in order: per unit of Keras's `model.layers`
/// with weights, its `(layer, weight)` pairs in the order its `weight_names` lists them.
fn unit_slots(spec: &ModelSpec) -> Vec<(Unit, Vec<(usize, usize)>)> {
    let fan_ins = spec.fan_ins();
    spec.units()
        .into_iter()
        .map(|u| {
            let slot = match u {
                Unit::Layer(i) => (0..spec.layers[i].weights(fan_ins[i]).len())
                    .map(|j| (i, j))
                    .collect(),
                Unit::Nested(k) => spec.nested_weight_order(k),
            };
            (u, slot)
        })
        .filter(|(_, s): &(Unit, Vec<(usize, usize)>)| !s.is_empty())
        .collect()
}

/// Reads `optimizer_weights` as Keras 3's legacy `.h5` writer lays it out: `weight_names` in
/// `optimizer.variables` order, `<optimizer>/iteration` first. With compile settings this tool
/// understands, the count and shapes are checked against what the optimizer builds on `spec`
/// (`saved_count`), as for a `.keras` archive.
fn read_optimizer_state(
    ctx: &Ctx,
    root: &Group,
    spec: &ModelSpec,
    compile: Option<std::result::Result<Compile, String>>,
) -> Result<Option<std::result::Result<OptimizerState, String>>> {
    let Some(g) = h5_guard::group(ctx, root, "optimizer_weights")? else {
        return Ok(None);
    };
    let names = read_string_list(ctx, &g, "weight_names")?;
    let mut sets = Vec::with_capacity(names.len());
    for name in &names {
        let what = format!("optimizer_weights '{name}'");
        let ds = h5_guard::dataset(ctx, &g, name, &what)?.ok_or_else(|| {
            ctx.not_keras(format!(
                "optimizer_weights names '{name}', but no such dataset exists"
            ))
        })?;
        sets.push(ds);
    }
    // Every declared shape is checked before any value is read: against what the compiled
    // optimizer builds on this model when the compile settings are understood, else against the
    // model's largest weight (no Keras optimizer keeps a variable larger than the weight it tracks).
    let shapes: Vec<Vec<usize>> = sets.iter().map(|d| d.shape()).collect();
    let fan_ins = spec.fan_ins();
    let largest = (0..spec.layers.len())
        .flat_map(|i| spec.layers[i].weights(fan_ins[i]))
        .map(|w| w.shape.iter().product::<usize>())
        .max()
        .unwrap_or(1)
        .max(1);
    for (name, shape) in names.iter().zip(&shapes) {
        let size = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if size.is_none_or(|n| n > largest) {
            return Err(ctx.not_keras(format!(
                "optimizer_weights '{name}' declares shape {shape:?}, larger than any weight of the model ({largest} values)"
            )));
        }
    }
    match names.first() {
        Some(first) if first == tfkeras2_optimizer::ITERATION => {
            return tfkeras2_optimizer::read_state(
                ctx,
                spec,
                compile,
                "optimizer_weights",
                Some(&names),
                sets.len(),
                &mut |i| Ok(sets[i].clone()),
            );
        }
        // tf.keras's legacy optimizers (`Adam/iter:0`, `Adam/dense/kernel/m:0`): neither Keras 3
        // nor tf.keras 2.21 restores them (both warn and start afresh).
        Some(first) if first.rsplit('/').next() != Some("iteration") => {
            return Ok(Some(Err(format!(
                "optimizer_weights starts with '{first}', the layout of tf.keras's legacy optimizers, which neither Keras 3 nor tf.keras 2.21 restores"
            ))));
        }
        _ => {}
    }
    if let Some(Ok(c)) = &compile {
        let opt = &c.optimizer;
        match saved_count(spec, opt, names.len(), "optimizer_weights")? {
            SavedCount::Fits(layout) => {
                for ((want, got), name) in layout.iter().zip(&shapes).zip(&names) {
                    if &want.1 != got {
                        return Err(ctx.not_keras(format!(
                            "optimizer_weights '{name}' has shape {got:?}, {} on this model needs {:?} ({})",
                            opt.keras_class(),
                            want.1,
                            want.0
                        )));
                    }
                }
            }
            SavedCount::NotBuilt => {
                if let Some((name, got)) = names.iter().zip(&shapes).find(|(_, s)| !s.is_empty()) {
                    return Err(ctx.not_keras(format!(
                        "optimizer_weights '{name}' has shape {got:?}, expected a scalar"
                    )));
                }
            }
            SavedCount::BuiltBeforeFreeze(why) => return Ok(Some(Err(why))),
            SavedCount::Other(why) => return Err(ctx.not_keras(why)),
        }
    }
    let mut state = OptimizerState::default();
    for (i, (name, ds)) in names.iter().zip(&sets).enumerate() {
        let leaf = name.rsplit('/').next().unwrap_or(name);
        if i == 0 {
            let it = ds
                .read_raw::<i64>()
                .map_err(|e| ctx.hdf5("optimizer iteration", e))?;
            state.iterations = it.first().copied().unwrap_or(0).max(0) as u64;
            continue;
        }
        let values = ds
            .read_raw::<f64>()
            .map_err(|e| ctx.hdf5(&format!("optimizer variable '{name}'"), e))?;
        if i == 1 && leaf == "learning_rate" {
            state.learning_rate = values.first().copied();
        } else {
            state.variables.push((leaf.to_string(), values));
        }
    }
    Ok(Some(Ok(state)))
}

/// The `keras_transfer_*` root attributes holding the data's names, when the file has them.
fn read_schema(ctx: &Ctx, file: &Group) -> Result<Option<DataSchema>> {
    let names = file
        .attr_names()
        .map_err(|e| ctx.hdf5("attribute list", e))?;
    if !names
        .iter()
        .any(|n| n == FEATURES_KEY || *n == format!("{FEATURES_KEY}0"))
    {
        return Ok(None);
    }
    let classes = if names
        .iter()
        .any(|n| n == CLASSES_KEY || *n == format!("{CLASSES_KEY}0"))
    {
        read_string_list(ctx, file, CLASSES_KEY)?
    } else {
        Vec::new()
    };
    let means = match read_string(ctx, file, MEANS_KEY)? {
        Some(text) => DataSchema::means_from_text(&text).map_err(|e| ctx.not_keras(e))?,
        None => Vec::new(),
    };
    Ok(Some(DataSchema {
        features: read_string_list(ctx, file, FEATURES_KEY)?,
        label: read_string(ctx, file, LABEL_KEY)?,
        classes,
        means,
    }))
}

// ---------------------------------------------------------------------------------------------
// Writing

fn fixed_strings<const N: usize>(values: &[&str]) -> Option<Vec<FixedAscii<N>>> {
    values
        .iter()
        .map(|s| FixedAscii::<N>::from_ascii(s.as_bytes()).ok())
        .collect()
}

/// Keras's `HDF5_OBJECT_HEADER_LIMIT`: the most bytes it puts in one list attribute.
const HDF5_OBJECT_HEADER_LIMIT: usize = 64512;
/// The longest scalar string written as fixed-length ASCII; a longer one (a large model's
/// `model_config`) is variable-length, as h5py writes Keras's, its text in the file's heap rather
/// than in the object header (which holds at most 64 KiB).
const FIXED_SCALAR: usize = 16 << 10;

/// Writes string attribute `name`: a scalar when `scalar`, else a 1-D array; as fixed-length ASCII
/// sized to the longest string (what h5py makes of Python bytes) when short, variable-length
/// otherwise (ASCII or UTF-8).
fn write_strings(loc: &Location, name: &str, values: &[&str], scalar: bool) -> hdf5::Result<()> {
    let longest = values.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let shape: Vec<usize> = if scalar { vec![] } else { vec![values.len()] };
    let ascii = values.iter().all(|s| s.is_ascii());
    let fixed_limit = if scalar {
        FIXED_SCALAR
    } else {
        HDF5_OBJECT_HEADER_LIMIT
    };
    if ascii && longest <= fixed_limit {
        let dtype = hdf5::Datatype::from_descriptor(&TypeDescriptor::FixedAscii(longest))?;
        let attr = loc
            .new_attr_builder()
            .empty_as(&dtype)
            .shape(shape.as_slice())
            .create(name)?;
        return match longest {
            0..=256 => attr.write_raw(&fixed_strings::<256>(values).unwrap_or_default()),
            _ => attr.write_raw(&fixed_strings::<65536>(values).unwrap_or_default()),
        };
    }
    if ascii {
        let v: Vec<VarLenAscii> = values
            .iter()
            .map(|s| VarLenAscii::from_ascii(s.as_bytes()).unwrap_or_default())
            .collect();
        let attr = loc
            .new_attr::<VarLenAscii>()
            .shape(shape.as_slice())
            .create(name)?;
        return attr.write_raw(&v);
    }
    let v: Vec<VarLenUnicode> = values
        .iter()
        .map(|s| s.parse().unwrap_or_default())
        .collect();
    let attr = loc
        .new_attr::<VarLenUnicode>()
        .shape(shape.as_slice())
        .create(name)?;
    attr.write_raw(&v)
}

/// Writes a list of strings as Keras's `save_attributes_to_hdf5_group` does: one attribute when
/// it fits `HDF5_OBJECT_HEADER_LIMIT` (count x longest), else the fewest numbered chunks `name0`,
/// `name1`, ... that each fit, split as `np.array_split` splits (the first chunks one longer).
/// A string longer than the limit itself (which Keras refuses) makes variable-length chunks, of
/// 16 bytes per string in the header.
fn write_string_list(loc: &Location, name: &str, values: &[&str]) -> hdf5::Result<()> {
    let longest = values.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let item = if longest > HDF5_OBJECT_HEADER_LIMIT || values.iter().any(|s| !s.is_ascii()) {
        16
    } else {
        longest
    };
    let n = values.len();
    let per_chunk = (HDF5_OBJECT_HEADER_LIMIT / item).max(1);
    let chunks = n.div_ceil(per_chunk).max(1);
    if chunks == 1 {
        return write_strings(loc, name, values, false);
    }
    let (base, extra) = (n / chunks, n % chunks);
    let mut start = 0;
    for k in 0..chunks {
        let len = base + usize::from(k < extra);
        write_strings(
            loc,
            &format!("{name}{k}"),
            &values[start..start + len],
            false,
        )?;
        start += len;
    }
    Ok(())
}

/// Creates the groups of a `/`-separated dataset path under `g` and returns the innermost group and
/// the dataset's own name.
fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn nested<'a>(g: &Group, wname: &'a str) -> hdf5::Result<(Group, &'a str)> {
    let mut parts: Vec<&str> = wname.split('/').collect();
    let leaf = parts.pop().unwrap_or(wname);
    let mut cur = g.clone();
    for p in parts {
        cur = if cur.link_exists(p) {
            cur.group(p)?
        } else {
            cur.create_group(p)?
        };
    }
    Ok((cur, leaf))
}

fn write_file(
    path: &Path,
    spec: &ModelSpec,
    weights: &[LayerWeights],
    format: Format,
    training_config: Option<&str>,
    optimizer: Option<SavedOptimizer>,
    data: Option<&DataSchema>,
) -> hdf5::Result<()> {
    let f = file_options().create(path)?;
    if let Some(d) = data {
        write_string_list(&f, FEATURES_KEY, &refs(&d.features))?;
        if !d.classes.is_empty() {
            write_string_list(&f, CLASSES_KEY, &refs(&d.classes))?;
        }
        if let Some(l) = &d.label {
            write_strings(&f, LABEL_KEY, &[l], true)?;
        }
        if let Some(m) = d.means_text() {
            write_strings(&f, MEANS_KEY, &[&m], true)?;
        }
    }
    let version = format.keras_version();
    write_strings(&f, "keras_version", &[version], true)?;
    write_strings(&f, "backend", &["tensorflow"], true)?;
    write_strings(
        &f,
        "model_config",
        &[&config::model_config(spec, format).to_string()],
        true,
    )?;
    if let Some(t) = training_config {
        write_strings(&f, "training_config", &[t], true)?;
    }
    if let Some(o) = optimizer {
        write_optimizer_state(&f, &o)?;
    }
    let mw = f.create_group("model_weights")?;
    let units = spec.units();
    let unit_name = |u: &Unit| match *u {
        Unit::Layer(i) => spec.layers[i].name(),
        Unit::Nested(k) => spec.nested[k].name.as_str(),
    };
    let names: Vec<&str> = units.iter().map(unit_name).collect();
    write_string_list(&mw, "layer_names", &names)?;
    write_strings(&mw, "backend", &["tensorflow"], true)?;
    write_strings(&mw, "keras_version", &[version], true)?;
    let slots = unit_slots(spec);
    let fan_ins = spec.fan_ins();
    for u in &units {
        let g = mw.create_group(unit_name(u))?;
        let Some((_, slot)) = slots.iter().find(|(v, _)| v == u) else {
            // Keras writes an empty float64 array for a layer without weights.
            g.new_attr::<f64>().shape([0]).create("weight_names")?;
            continue;
        };
        let wnames: Vec<String> = slot
            .iter()
            .map(|&(i, j)| {
                let l = &spec.layers[i];
                let w = l.weights(fan_ins[i])[j].name;
                match (format, *u, &spec.kind) {
                    (Format::Keras3, Unit::Nested(k), _) => {
                        // A variable's path: the Sequential models that built its layer (nested
                        // ones inside `k` included), then the layer (ConvNeXt's base lists
                        // `convnext_tiny_stem/convnext_tiny_stem_conv/kernel`).
                        let scopes: String = nested::holders(&spec.nested, i)
                            .into_iter()
                            .filter(|&h| h == k || nested::contains(&spec.nested, k, h))
                            .filter(|&h| !spec.nested[h].functional())
                            .map(|h| format!("{}/", spec.nested[h].name))
                            .collect();
                        format!("{scopes}{}/{w}", l.name())
                    }
                    (Format::Keras3, _, ModelKind::Sequential) => {
                        format!("sequential/{}/{w}", l.name())
                    }
                    (Format::Keras3, _, ModelKind::Functional { .. }) => {
                        format!("{}/{w}", l.name())
                    }
                    (Format::Universal, _, _) => format!("{}/{w}:0", l.name()),
                }
            })
            .collect();
        let refs: Vec<&str> = wnames.iter().map(String::as_str).collect();
        write_string_list(&g, "weight_names", &refs)?;
        for (&(i, j), wname) in slot.iter().zip(&wnames) {
            let s = &spec.layers[i].weights(fan_ins[i])[j];
            let (wg, leaf) = nested(&g, wname)?;
            write_layer_weight(&wg, leaf, &spec.layers[i], s, &weights[i][j], spec.dtype)?;
        }
    }
    // Keras writes an empty group for the model's own (layer-less) variables.
    let top = mw.create_group("top_level_model_weights")?;
    top.new_attr::<f64>().shape([0]).create("weight_names")?;
    f.flush()?;
    f.close()
}

/// What Keras's `optimizer.variables` holds once the optimizer is built on a model of `spec`, in
/// order, `(name, shape)`: `iteration`, `learning_rate` (a constant rate only), then the slots
/// (`OptimizerSpec::slot_variables` on the model's trainable variables).
pub fn optimizer_layout(spec: &ModelSpec, opt: &OptimizerSpec) -> Vec<(String, Vec<usize>)> {
    let mut layout = vec![("iteration".to_string(), Vec::new())];
    if opt.has_learning_rate_variable() {
        layout.push(("learning_rate".to_string(), Vec::new()));
    }
    layout.extend(opt.slot_variables(&trainable_variables(spec)));
    layout
}

/// How `n` saved optimizer variables compare with those `opt` builds on a model of `spec`
/// (`optimizer_layout`), for the file's `group` of them.
pub(crate) enum SavedCount {
    /// As many as the layout has (its names and shapes).
    Fits(Vec<(String, Vec<usize>)>),
    /// At most the step count and the learning rate: an optimizer compiled but not built yet.
    NotBuilt,
    /// As many as it builds with every layer trainable: built before some layers were frozen,
    /// without a re-compile (Keras's `load_model` skips such a state, with a warning).
    BuiltBeforeFreeze(String),
    /// Any other count: the message says what was expected.
    Other(String),
}

pub(crate) fn saved_count(
    spec: &ModelSpec,
    opt: &OptimizerSpec,
    n: usize,
    group: &str,
) -> Result<SavedCount> {
    let layout = optimizer_layout(spec, opt);
    if n == layout.len() {
        return Ok(SavedCount::Fits(layout));
    }
    if n <= 2 {
        return Ok(SavedCount::NotBuilt);
    }
    let mut unfrozen = spec.clone();
    unfrozen.freeze_only(&[])?;
    let class = opt.keras_class();
    if optimizer_layout(&unfrozen, opt).len() == n {
        return Ok(SavedCount::BuiltBeforeFreeze(format!(
            "its {n} optimizer variables were built before some layers were frozen; {class} on this model has {}",
            layout.len()
        )));
    }
    let lr = opt.has_learning_rate_variable();
    Ok(SavedCount::Other(format!(
        "'{group}' holds {n} variables, but {class} on this model has {} (iteration{}, then {} state variables for its {} trainable weights)",
        layout.len(),
        if lr { ", learning_rate" } else { "" },
        layout.len() - 1 - usize::from(lr),
        trainable_variables(spec).len()
    )))
}

/// The optimizer state a Keras 3 file of `m` holds: `Ok(Some)`, `m`'s own, when
/// it is what `m`'s compiled optimizer builds on its architecture; `Ok(None)` when `m` has no
/// state (or a fresh one), written as Keras writes a freshly compiled optimizer; `Err(why)` when
/// `m` has a state that cannot be written.
pub fn archived_state(m: &KerasModel) -> std::result::Result<Option<&OptimizerState>, String> {
    let s = match &m.optimizer_state {
        None => return Ok(None),
        Some(Err(e)) => return Err(e.clone()),
        Some(Ok(s)) if s.variables.is_empty() && s.iterations == 0 => return Ok(None),
        Some(Ok(s)) => s,
    };
    let opt = m
        .optimizer()
        .ok_or("the model's compile settings are not ones this tool can rebuild")?;
    let slots = opt.slot_variables(&trainable_variables(&m.spec));
    let fits = slots.len() == s.variables.len()
        && slots
            .iter()
            .zip(&s.variables)
            .all(|((_, shape), (_, v))| shape.iter().product::<usize>() == v.len())
        && s.learning_rate.is_some() == opt.has_learning_rate_variable();
    if fits {
        Ok(Some(s))
    } else {
        Err(format!(
            "its {} saved variables are not the {} that {} builds on this model",
            s.variables.len(),
            slots.len(),
            opt.keras_class()
        ))
    }
}

/// The name Keras gives an optimizer (and its `vars` group): its config's `name`, else its class
/// in lower case.
pub(crate) fn keras_optimizer_name(o: &OptimizerSpec) -> String {
    o.name
        .clone()
        .unwrap_or_else(|| o.keras_class().to_lowercase())
}

/// An optimizer state to write: the optimizer's Keras name, the state, and each slot variable's
/// shape (`OptimizerSpec::slot_variables`).
struct SavedOptimizer<'a> {
    name: String,
    state: &'a OptimizerState,
    shapes: Vec<Vec<usize>>,
    /// The model's dtype, which the variables are written in.
    dtype: FloatDtype,
}

/// Writes `optimizer_weights` as Keras 3 does: `weight_names` and one dataset per variable under
/// `<optimizer name>/`.
fn write_optimizer_state(f: &hdf5::File, o: &SavedOptimizer) -> hdf5::Result<()> {
    let (opt, state) = (o.name.as_str(), o.state);
    let g = f.create_group("optimizer_weights")?;
    let og = g.create_group(opt)?;
    let mut names = vec![format!("{opt}/iteration")];
    og.new_dataset::<i64>()
        .create("iteration")?
        .write_scalar(&(state.iterations as i64))?;
    if let Some(lr) = state.learning_rate {
        names.push(format!("{opt}/learning_rate"));
        match o.dtype {
            FloatDtype::Float32 => og
                .new_dataset::<f32>()
                .create("learning_rate")?
                .write_scalar(&(lr as f32))?,
            FloatDtype::Float64 => og
                .new_dataset::<f64>()
                .create("learning_rate")?
                .write_scalar(&lr)?,
        }
    }
    for ((name, values), shape) in state.variables.iter().zip(&o.shapes) {
        names.push(format!("{opt}/{name}"));
        write_values(&og, name, shape, values, o.dtype)?;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    write_string_list(&g, "weight_names", &refs)
}

/// Saves a model as Keras `model.h5` in its dialect (`m.format`), atomically. Its compile settings,
/// when it has any, are recorded in `training_config` (a file without one loads in Keras
/// uncompiled).
pub fn save_h5(path: &Path, m: &KerasModel) -> Result<()> {
    let target: PathBuf = path.to_path_buf();
    let tc = m.training_config_for(m.format);
    let (spec, weights, format) = (&m.spec, &m.weights, m.format);
    config::writable(spec, format)
        .and_then(|()| crate::keras::limits::check_writable(m.data.as_ref(), tc.as_deref()))
        .map_err(|found| Error::Unsupported {
            path: target.clone(),
            found,
        })?;
    // Keras 3's layout of the optimizer's variables, in Keras 3 files, when the state is the one
    // the compiled optimizer builds on this model (a fresh one: the step count and rate only).
    let state = match (format, m.optimizer(), archived_state(m), &m.optimizer_state) {
        (Format::Keras3, Some(o), Ok(Some(s)), _) => Some((o, s)),
        (Format::Keras3, Some(o), Ok(None), Some(Ok(s))) => Some((o, s)),
        _ => None,
    };
    let state = state.map(|(o, s)| SavedOptimizer {
        name: keras_optimizer_name(&o),
        state: s,
        shapes: o
            .slot_variables(&trainable_variables(spec))
            .into_iter()
            .map(|(_, shape)| shape)
            .collect(),
        dtype: spec.dtype,
    });
    write_atomic(path, |tmp| {
        write_file(
            tmp,
            spec,
            weights,
            format,
            tc.as_deref(),
            state,
            m.data.as_ref(),
        )
        .map_err(|e| Error::Hdf5 {
            path: target.clone(),
            reason: format!("writing: {e}"),
        })
    })
}
