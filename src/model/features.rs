//! Feature extraction: any layer's output for a model's inputs, in inference mode (Keras's
//! `Model(inputs, layer.output).predict(x)`), chosen by name, by index into `model.layers` or as
//! `base/layer` inside a nested model, and written as `.npy` or `.csv`.

use crate::error::{Error, Result};
use crate::model::nested::Unit;
use crate::model::network::Model;
use crate::model::{FloatDtype, ModelKind, ModelSpec};
use crate::model::{values_of, values_tensor};

/// One layer's output for N samples: `shape` is `[N, dims...]` as Keras gives it, `values`
/// row-major (the model's dtype's values, held as f64).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub layer: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    pub float64: bool,
}

/// What a `--layer` names: the model's input (an InputLayer of `model.layers`) or a layer of the
/// flattened model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    Input,
    Layer(usize),
}

/// Keras's `model.layers` names: a Functional model's InputLayer first, then the units (a nested
/// model as one entry); a Sequential model's layers without its InputLayer.
pub fn keras_layers(spec: &ModelSpec) -> Vec<(String, Selected)> {
    let mut out = Vec::new();
    if let ModelKind::Functional { input_name } = &spec.kind
        && spec.graph.as_ref().is_none_or(|g| g.inputs.len() == 1)
    {
        out.push((input_name.clone(), Selected::Input));
    }
    for u in spec.units() {
        out.push(match u {
            Unit::Layer(i) => (spec.layers[i].name().to_string(), Selected::Layer(i)),
            Unit::Nested(k) => {
                let m = &spec.nested[k];
                (m.name.clone(), Selected::Layer(m.end - 1))
            }
        });
    }
    out
}

/// Resolves a layer's name, its 0-based index into Keras's `model.layers`, or `base/layer` for a
/// layer inside the nested model `base`; an unknown one is refused listing a few valid names.
pub fn select(spec: &ModelSpec, which: &str) -> Result<Selected> {
    select_as(spec, which, "layer")
}

/// `select`, its errors naming `param` (the CLI's flag).
pub fn select_as(spec: &ModelSpec, which: &str, param: &str) -> Result<Selected> {
    let top = keras_layers(spec);
    let few = || {
        let names: Vec<&str> = top.iter().take(8).map(|(n, _)| n.as_str()).collect();
        let more = if top.len() > 8 { ", ..." } else { "" };
        format!(
            "0 to {} or one of {}{more}",
            top.len().saturating_sub(1),
            names.join(", ")
        )
    };
    if let Ok(i) = which.parse::<usize>() {
        return top.get(i).map(|(_, s)| *s).ok_or_else(|| {
            Error::invalid(
                param,
                format!("index {i} is not in model.layers (valid: {})", few()),
            )
        });
    }
    if which.contains('/') {
        return select_path(spec, which, param);
    }
    top.iter()
        .find(|(n, _)| n == which)
        .map(|(_, s)| *s)
        .ok_or_else(|| Error::invalid(param, format!("no layer '{which}' (valid: {})", few())))
}

/// A path `base/.../layer` into nested models (at any depth, as Keras's `get_layer` chained):
/// each part before the last names a nested model inside the one before it; the last names a
/// layer of the innermost, or a nested model in it (its output layer).
fn select_path(spec: &ModelSpec, which: &str, param: &str) -> Result<Selected> {
    let parts: Vec<&str> = which.split('/').collect();
    let (mut lo, mut hi) = (0, spec.layers.len());
    let mut inside: Option<&crate::model::nested::NestedSpec> = None;
    // The outermost nested model of that name within [lo, hi).
    let nested_in = |name: &str, lo: usize, hi: usize| {
        spec.nested
            .iter()
            .filter(|m| m.name == name && m.start >= lo && m.end <= hi)
            .max_by_key(|m| m.end - m.start)
    };
    for (k, part) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        if last
            && let Some(m) = inside
            && *part == m.input_name
        {
            return Err(Error::invalid(
                param,
                format!(
                    "'{which}' is the nested model's input; name the layer before '{}' instead",
                    m.name
                ),
            ));
        }
        if let Some(m) = nested_in(part, lo, hi) {
            if last {
                return Ok(Selected::Layer(m.end - 1));
            }
            (lo, hi, inside) = (m.start, m.end, Some(m));
            continue;
        }
        if last && inside.is_some() {
            if let Some(i) = (lo..hi).find(|&i| spec.layers[i].name() == *part) {
                return Ok(Selected::Layer(i));
            }
        }
        return Err(Error::invalid(
            param,
            match inside {
                None => {
                    let nested: Vec<&str> = spec.nested.iter().map(|m| m.name.as_str()).collect();
                    format!(
                        "'{part}' is not a nested model of this one (nested: {})",
                        match nested.is_empty() {
                            true => "none".to_string(),
                            false => nested.join(", "),
                        }
                    )
                }
                Some(m) => {
                    let names: Vec<&str> =
                        (lo..hi).take(8).map(|i| spec.layers[i].name()).collect();
                    format!(
                        "'{part}' is not a layer of '{}' (its layers: {}{})",
                        m.name,
                        names.join(", "),
                        if hi - lo > 8 { ", ..." } else { "" }
                    )
                }
            },
        ));
    }
    Err(Error::invalid(param, format!("'{which}' names no layer")))
}

/// The output of the layer `which` (see `select`) for row-major inputs `x` (`input_dim` values a
/// row), in inference mode, cast to the model's dtype as `predict` casts its inputs.
pub fn extract(model: &Model, x: &[f64], which: &str) -> Result<Features> {
    let spec = model.spec();
    let d = spec.input_dim;
    if x.is_empty() || !x.len().is_multiple_of(d) {
        return Err(Error::Mismatch(format!(
            "{} input values are not rows of {d}",
            x.len()
        )));
    }
    if model.members() != 1 {
        return Err(Error::invalid("features", "needs a lone model"));
    }
    let n = x.len() / d;
    let float64 = spec.dtype == FloatDtype::Float64;
    let t = values_tensor(x.to_vec(), (1, n, d), spec.dtype.candle(), model.device())?;
    let (layer, shape, values) = match select(spec, which)? {
        Selected::Input => {
            let dims = spec.sample_shape().unwrap_or_else(|| vec![d]);
            (which.to_string(), dims, values_of(&t)?)
        }
        Selected::Layer(i) => {
            let out = model.layer_output(&t, i)?;
            (
                spec.layers[i].name().to_string(),
                out.dims()[2..].to_vec(),
                values_of(&out)?,
            )
        }
    };
    let mut full = vec![n];
    full.extend(shape);
    Ok(Features {
        layer,
        shape: full,
        values,
        float64,
    })
}

impl Features {
    /// The values a sample holds (the product of the dimensions after N).
    pub fn width(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// The `.npy` file (format 1.0): `<f4` for a float32 model, `<f8` for float64, C order.
    pub fn to_npy(&self) -> Vec<u8> {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let tuple = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let descr = if self.float64 { "<f8" } else { "<f4" };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
        // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
        let total = (10 + header.len() + 1).div_ceil(64) * 64;
        header.push_str(&" ".repeat(total - 10 - header.len() - 1));
        header.push('\n');
        let size = if self.float64 { 8 } else { 4 };
        let mut out = Vec::with_capacity(total + self.values.len() * size);
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for &v in &self.values {
            match self.float64 {
                true => out.extend_from_slice(&v.to_le_bytes()),
                false => out.extend_from_slice(&(v as f32).to_le_bytes()),
            }
        }
        out
    }

    /// The `.csv` file: a header `f0,f1,...` (after `file` when rows are named), one row per sample,
    /// its values flattened in row-major order, each the shortest text that reads back exactly.
    pub fn to_csv(&self, row_names: Option<&[String]>) -> Result<Vec<u8>> {
        let w = self.width();
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut head: Vec<String> = row_names.iter().map(|_| "file".to_string()).collect();
        head.extend((0..w).map(|j| format!("f{j}")));
        out.write_record(&head)
            .map_err(|e| Error::Internal(e.to_string()))?;
        for (i, row) in self.values.chunks(w.max(1)).enumerate() {
            let mut rec: Vec<String> = row_names
                .and_then(|r| r.get(i))
                .map(|s| vec![s.clone()])
                .unwrap_or_default();
            rec.extend(row.iter().map(|&v| match self.float64 {
                true => v.to_string(),
                false => (v as f32).to_string(),
            }));
            out.write_record(&rec)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        out.into_inner().map_err(|e| Error::Internal(e.to_string()))
    }
}
