//! Keras's `Permute`: each sample's axes reordered (`dims` counts them from 1, as Keras does, the
//! batch left out).

use crate::error::{Error, Result};
use crate::model::dialect::{Format, Res, check_keys, malformed};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Permute(dims)`: output axis i is input axis `dims[i]` (1-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermuteSpec {
    pub name: String,
    pub dims: Vec<usize>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for PermuteSpec {
    named_layer!("Permute");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        if input.rank() != self.dims.len() {
            return Err(Error::invalid(
                "shape",
                format!(
                    "dims {:?} permute {} axes, the input {input} has {}",
                    self.dims,
                    self.dims.len(),
                    input.rank()
                ),
            ));
        }
        Ok(Shape(
            self.dims.iter().map(|&d| input.dims()[d - 1]).collect(),
        ))
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let mut order = vec![0, 1];
        order.extend(self.dims.iter().map(|&d| d + 1));
        Ok(x.permute(order)?.contiguous()?)
    }

    fn config(&self, _: Format) -> Value {
        json!({"dims": self.dims})
    }
}

impl KerasLayer for PermuteSpec {
    const CLASSES: &'static [&'static str] = &["Permute"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["dims"])?;
        let v = cfg.get("dims").unwrap_or(&Value::Null);
        let dims: Option<Vec<usize>> = v
            .as_array()
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect());
        let Some(dims) = dims.filter(|d| {
            let mut s = d.clone();
            s.sort_unstable();
            !s.is_empty() && s.iter().enumerate().all(|(i, &x)| x == i + 1)
        }) else {
            return malformed(format!(
                "Permute 'dims' = {v} (expected a permutation of 1..n)"
            ));
        };
        Ok(PermuteSpec {
            name: c.name.clone(),
            dims,
            trainable: c.trainable,
        })
    }
}
