//! Keras's `Reshape`: each sample's values, in row-major order, in a new shape (one dimension may be
//! -1: whatever the others leave).

use crate::error::{Error, Result};
use crate::model::dialect::{Format, Res, check_keys, malformed};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::{MAX_VALUES, Shape};
use crate::model::spatial::{merge_members, split_members};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Reshape(target_shape)`: positive dimensions and at most one -1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReshapeSpec {
    pub name: String,
    pub target_shape: Vec<i64>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl ReshapeSpec {
    /// The target shape for a sample of `size` values (the -1 resolved), or why it does not fit.
    fn resolve(&self, size: usize) -> Result<Vec<usize>> {
        let known: usize = self
            .target_shape
            .iter()
            .filter(|&&d| d > 0)
            .map(|&d| d as usize)
            .product();
        let fits = |n: usize| {
            Error::invalid(
                "shape",
                format!(
                    "target_shape {:?} does not hold the {n} values of a sample",
                    self.target_shape
                ),
            )
        };
        let free = if self.target_shape.contains(&-1) {
            if known == 0 || !size.is_multiple_of(known) {
                return Err(fits(size));
            }
            size / known
        } else {
            1
        };
        let dims: Vec<usize> = self
            .target_shape
            .iter()
            .map(|&d| if d == -1 { free } else { d as usize })
            .collect();
        if dims.iter().product::<usize>() != size || size == 0 {
            return Err(fits(size));
        }
        Ok(dims)
    }
}

impl Layer for ReshapeSpec {
    named_layer!("Reshape");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        Ok(Shape(self.resolve(input.size())?))
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let (b, rn) = merge_members(x)?;
        let mut dims = vec![b.dim(0)?];
        dims.extend(self.resolve(b.dims()[1..].iter().product())?);
        split_members(&b.reshape(dims)?, rn)
    }

    fn config(&self, _: Format) -> Value {
        json!({"target_shape": self.target_shape})
    }
}

impl KerasLayer for ReshapeSpec {
    const CLASSES: &'static [&'static str] = &["Reshape"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["target_shape"])?;
        let v = cfg.get("target_shape").unwrap_or(&Value::Null);
        let dims: Option<Vec<i64>> = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_i64).collect());
        let Some(dims) = dims.filter(|d| {
            !d.is_empty()
                && d.iter().filter(|&&x| x == -1).count() <= 1
                && d.iter()
                    .all(|&x| x == -1 || (1..=MAX_VALUES as i64).contains(&x))
        }) else {
            return malformed(format!(
                "Reshape 'target_shape' = {v} (expected positive integers and at most one -1)"
            ));
        };
        Ok(ReshapeSpec {
            name: c.name.clone(),
            target_shape: dims,
            trainable: c.trainable,
        })
    }
}
