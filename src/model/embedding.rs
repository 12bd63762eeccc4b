//! Keras's `Embedding` layer: each input value, cast to an integer index as Keras casts it (towards
//! zero), picks a row of the trainable `embeddings` table `(input_dim, output_dim)`; the gradient
//! adds into the picked rows (candle's `index_select`, whose backward pass is an `index_add`).

use crate::error::{Error, Result};
use crate::model::Initializer;
use crate::model::dialect::{
    Format, Res, check_keys, initializer_json, malformed, parse_initializer, require_null,
    unsupported,
};
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::shape::{MAX_UNITS, Shape};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The most rows an embedding table may have (guards allocations against absurd configs).
pub const MAX_INPUT_DIM: usize = 1 << 24;
/// The most values an embedding table may hold (256 Mi: 1 GiB of float32).
pub const MAX_TABLE: usize = 1 << 28;

/// `Embedding(input_dim, output_dim, embeddings_initializer="uniform")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSpec {
    pub name: String,
    pub input_dim: usize,
    pub output_dim: usize,
    pub embeddings_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl EmbeddingSpec {
    /// The values of `x` as row indices of the table: truncated towards zero (Keras's cast to
    /// int32); a value that is not a number or whose index is outside `0..input_dim` is refused,
    /// naming its row.
    fn indices(&self, x: &Tensor) -> Result<Tensor> {
        let (r, n) = (x.dim(0)?, x.dim(1)?);
        let per_row = x.elem_count() / (r * n).max(1);
        let values = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let mut idx = Vec::with_capacity(values.len());
        for (k, &v) in values.iter().enumerate() {
            let i = v.trunc();
            if !(i >= 0.0 && i < self.input_dim as f64) {
                return Err(Error::Mismatch(format!(
                    "Embedding '{}': row {} holds {v}, not an index in 0..{} (input_dim)",
                    self.name,
                    (k / per_row) % n.max(1),
                    self.input_dim
                )));
            }
            idx.push(i as u32);
        }
        Ok(Tensor::from_vec(idx, values.len(), x.device())?)
    }
}

impl Layer for EmbeddingSpec {
    named_layer!("Embedding");

    /// `(None, ..., output_dim)`: one row of the table per input value.
    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let mut dims = input.dims().to_vec();
        dims.push(self.output_dim);
        Ok(Shape(dims))
    }

    /// `embeddings`, `(input_dim, output_dim)`.
    fn weights(&self, _: usize) -> Vec<WeightSpec> {
        vec![WeightSpec {
            name: "embeddings",
            shape: vec![self.input_dim, self.output_dim],
            trainable: true,
            initializer: self.embeddings_initializer.clone(),
            fans: (self.input_dim, self.output_dim),
        }]
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let idx = self.indices(x)?;
        let r = x.dim(0)?;
        let per_member = idx.dim(0)? / r.max(1);
        let mut shape = x.dims().to_vec();
        shape[0] = 1;
        shape.push(self.output_dim);
        let members = (0..r)
            .map(|m| {
                let table = s.w[0].get(m)?;
                let picked = table.index_select(&idx.narrow(0, m * per_member, per_member)?, 0)?;
                picked.reshape(shape.as_slice())
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&members, 0)?)
    }

    fn config(&self, format: Format) -> Value {
        let mut v = json!({
            "input_dim": self.input_dim, "output_dim": self.output_dim,
            "embeddings_initializer": initializer_json(&self.embeddings_initializer, format),
            "embeddings_regularizer": null, "activity_regularizer": null,
            "embeddings_constraint": null, "mask_zero": false,
        });
        if format == Format::Universal {
            v["input_length"] = Value::Null;
        }
        v
    }
}

impl KerasLayer for EmbeddingSpec {
    const CLASSES: &'static [&'static str] = &["Embedding"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(
            class,
            cfg,
            &[
                "input_dim",
                "output_dim",
                "embeddings_initializer",
                "input_length",
            ],
        )?;
        require_null(
            class,
            cfg,
            &[
                "embeddings_regularizer",
                "embeddings_constraint",
                "activity_regularizer",
                "lora_rank",
            ],
        )?;
        if cfg.get("mask_zero").and_then(Value::as_bool) == Some(true) {
            return unsupported(format!(
                "{class} '{}' mask_zero=True (masks are not supported)",
                c.name
            ));
        }
        let dim = |key: &str, max: usize| -> Res<usize> {
            match cfg.get(key).and_then(Value::as_u64) {
                Some(d) if (1..=max as u64).contains(&d) => Ok(d as usize),
                _ => malformed(format!(
                    "{class} '{}' {key} is not an integer in 1..={max}",
                    c.name
                )),
            }
        };
        let (input_dim, output_dim) = (
            dim("input_dim", MAX_INPUT_DIM)?,
            dim("output_dim", MAX_UNITS)?,
        );
        if input_dim * output_dim > MAX_TABLE {
            return unsupported(format!(
                "{class} '{}' of {input_dim} x {output_dim} values (this tool's limit is {MAX_TABLE})",
                c.name
            ));
        }
        Ok(EmbeddingSpec {
            name: c.name.clone(),
            input_dim,
            output_dim,
            embeddings_initializer: parse_initializer(
                cfg.get("embeddings_initializer"),
                Initializer::RandomUniform {
                    minval: -0.05,
                    maxval: 0.05,
                },
            )?,
            trainable: c.trainable,
        })
    }
}
