//! Keras's `Cropping1D/2D` (channels last): values cut from the start and the end of each spatial
//! axis.

use crate::error::{Error, Result};
use crate::model::dialect::{Format, Res, check_keys};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use crate::model::spatial::{channels_last, pairs, pairs_json, split_channels};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Cropping{1,2}D(cropping)`: `(start, end)` cut per spatial axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CroppingSpec {
    pub name: String,
    pub cropping: Vec<(usize, usize)>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn cropping_class(l: &CroppingSpec) -> &'static str {
    if l.cropping.len() == 1 {
        "Cropping1D"
    } else {
        "Cropping2D"
    }
}

impl Layer for CroppingSpec {
    named_layer!(by cropping_class);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let (spatial, c) = split_channels(input, self.cropping.len())?;
        let mut dims = Vec::with_capacity(spatial.len() + 1);
        for (&n, &(b, a)) in spatial.iter().zip(&self.cropping) {
            if b + a >= n {
                return Err(Error::invalid(
                    "shape",
                    format!("cropping {b} + {a} values leaves nothing of {n} ({input})"),
                ));
            }
            dims.push(n - b - a);
        }
        dims.push(c);
        Ok(Shape(dims))
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let mut y = x.clone();
        for (a, &(start, end)) in self.cropping.iter().enumerate() {
            let n = y.dim(a + 2)?;
            y = y.narrow(a + 2, start, n.saturating_sub(start + end))?;
        }
        Ok(y)
    }

    fn config(&self, _: Format) -> Value {
        if self.cropping.len() == 1 {
            return json!({"cropping": pairs_json(&self.cropping)});
        }
        json!({"cropping": pairs_json(&self.cropping), "data_format": "channels_last"})
    }
}

impl KerasLayer for CroppingSpec {
    const CLASSES: &'static [&'static str] = &["Cropping1D", "Cropping2D"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["cropping", "data_format"])?;
        channels_last(c.class, cfg)?;
        let (axes, default) = if c.class == "Cropping1D" {
            (1, 1)
        } else {
            (2, 0)
        };
        Ok(CroppingSpec {
            name: c.name.clone(),
            cropping: pairs(c.class, cfg, "cropping", axes, default)?,
            trainable: c.trainable,
        })
    }
}
