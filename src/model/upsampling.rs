//! Keras's `UpSampling1D/2D` (channels last, nearest): each value repeated `size` times along each
//! spatial axis (`ops.repeat`); the gradient of the copies adds up.

use crate::error::Result;
use crate::model::dialect::{Format, Res, check_keys, unsupported};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use crate::model::spatial::{channels_last, checked, int_tuple, split_channels};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `UpSampling{1,2}D(size)`, nearest-neighbour: one factor per spatial axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpSamplingSpec {
    pub name: String,
    pub size: Vec<usize>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn upsampling_class(l: &UpSamplingSpec) -> &'static str {
    if l.size.len() == 1 {
        "UpSampling1D"
    } else {
        "UpSampling2D"
    }
}

impl Layer for UpSamplingSpec {
    named_layer!(by upsampling_class);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let (spatial, c) = split_channels(input, self.size.len())?;
        let mut dims = Vec::with_capacity(spatial.len() + 1);
        for (&n, &s) in spatial.iter().zip(&self.size) {
            dims.push(n.saturating_mul(s));
        }
        dims.push(c);
        checked(dims)
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let mut y = x.contiguous()?;
        for (a, &s) in self.size.iter().enumerate() {
            let n = y.dim(a + 2)?;
            let ids: Vec<u32> = (0..n * s).map(|i| (i / s) as u32).collect();
            let ids = Tensor::from_vec(ids, n * s, x.device())?;
            y = y.index_select(&ids, a + 2)?;
        }
        Ok(y)
    }

    fn config(&self, _: Format) -> Value {
        match self.size.as_slice() {
            [s] => json!({"size": s}),
            _ => {
                json!({"size": self.size, "data_format": "channels_last", "interpolation": "nearest"})
            }
        }
    }
}

impl KerasLayer for UpSamplingSpec {
    const CLASSES: &'static [&'static str] = &["UpSampling1D", "UpSampling2D"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["size", "data_format", "interpolation"])?;
        channels_last(c.class, cfg)?;
        match cfg.get("interpolation") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.eq_ignore_ascii_case("nearest") => {}
            Some(v) => {
                return unsupported(format!("{} interpolation {v} (only 'nearest')", c.class));
            }
        }
        let axes = if c.class == "UpSampling1D" { 1 } else { 2 };
        Ok(UpSamplingSpec {
            name: c.name.clone(),
            size: int_tuple(c.class, cfg, "size", axes, 1)?.unwrap_or(vec![2; axes]),
            trainable: c.trainable,
        })
    }
}
