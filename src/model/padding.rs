//! Keras's `ZeroPadding1D/2D` (channels last): zeros added before and after each spatial axis.

use crate::error::Result;
use crate::model::dialect::{Format, Res, check_keys};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use crate::model::spatial::{channels_last, checked, pairs, pairs_json, split_channels};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `ZeroPadding{1,2}D(padding)`: `(before, after)` per spatial axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeroPaddingSpec {
    pub name: String,
    pub padding: Vec<(usize, usize)>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn padding_class(l: &ZeroPaddingSpec) -> &'static str {
    if l.padding.len() == 1 {
        "ZeroPadding1D"
    } else {
        "ZeroPadding2D"
    }
}

impl Layer for ZeroPaddingSpec {
    named_layer!(by padding_class);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let (spatial, c) = split_channels(input, self.padding.len())?;
        let mut dims: Vec<usize> = spatial
            .iter()
            .zip(&self.padding)
            .map(|(&n, &(b, a))| n + b + a)
            .collect();
        dims.push(c);
        checked(dims)
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        // x [R, N, spatial..., C]: the spatial axes padded, one copy (kernels::pad).
        let mut pads = vec![(0, 0); x.rank()];
        for (a, &p) in self.padding.iter().enumerate() {
            pads[a + 2] = p;
        }
        if pads.iter().all(|&(b, a)| b + a == 0) {
            return Ok(x.clone());
        }
        Ok(crate::model::kernels::pad::pad(x, pads)?)
    }

    fn config(&self, format: Format) -> Value {
        // tf.keras 2's ZeroPadding1D takes no data_format (Keras 3 reads the file without one).
        if self.padding.len() == 1 && format == Format::Universal {
            return json!({"padding": pairs_json(&self.padding)});
        }
        json!({"padding": pairs_json(&self.padding), "data_format": "channels_last"})
    }
}

impl KerasLayer for ZeroPaddingSpec {
    const CLASSES: &'static [&'static str] = &["ZeroPadding1D", "ZeroPadding2D"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["padding", "data_format"])?;
        channels_last(c.class, cfg)?;
        let axes = if c.class == "ZeroPadding1D" { 1 } else { 2 };
        Ok(ZeroPaddingSpec {
            name: c.name.clone(),
            padding: pairs(c.class, cfg, "padding", axes, 1)?,
            trainable: c.trainable,
        })
    }
}
