//! Keras's `ReLU` layer with its three settings: `max_value` (a ceiling), `negative_slope` (a slope
//! below the threshold) and `threshold` (values at or below it are 0, or follow the slope), computed
//! in the order Keras 3's `activations.relu` computes them.

use crate::error::Result;
use crate::model::activation::leaky_relu;
use crate::model::dialect::{Format, Res, check_keys, number, unsupported};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `ReLU(max_value=None, negative_slope=0.0, threshold=0.0)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReluSpec {
    pub name: String,
    pub max_value: Option<f64>,
    pub negative_slope: f64,
    pub threshold: f64,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for ReluSpec {
    named_layer!("ReLU");

    /// Keras 3's `ReLU.static_call`: a plain leaky ReLU when only the slope is set; otherwise
    /// `x` where `x > threshold` (else 0), clipped to `[0, max_value]`, minus
    /// `slope * relu(threshold - x)`.
    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let slope = self.negative_slope;
        if slope != 0.0 && self.max_value.is_none() && self.threshold == 0.0 {
            return leaky_relu(x, slope);
        }
        let negative = if slope != 0.0 {
            Some(if self.threshold != 0.0 {
                (x.neg()? + self.threshold)?.relu()?
            } else {
                x.neg()?.relu()?
            })
        } else {
            None
        };
        // Keras 3 runs TensorFlow's `relu6` (and its gradient) for max_value 6 without a threshold.
        let relu6 = self.threshold == 0.0 && self.max_value == Some(6.0);
        let mut y = if self.threshold != 0.0 {
            let keep = x.gt(self.threshold)?;
            keep.where_cond(x, &x.zeros_like()?)?
        } else if relu6 {
            crate::model::kernels::relu6::relu6(x)?
        } else {
            x.relu()?
        };
        if let (Some(m), false) = (self.max_value, relu6) {
            y = y.clamp(0f64, m)?;
        }
        if let Some(n) = negative {
            y = (y - (n * slope)?)?;
        }
        Ok(y)
    }

    fn config(&self, _: Format) -> Value {
        json!({"max_value": self.max_value, "negative_slope": self.negative_slope,
               "threshold": self.threshold})
    }
}

impl KerasLayer for ReluSpec {
    const CLASSES: &'static [&'static str] = &["ReLU"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(class, cfg, &["max_value", "negative_slope", "threshold"])?;
        let max_value = match cfg.get("max_value") {
            None | Some(Value::Null) => None,
            Some(_) => Some(number(class, cfg, "max_value", 0.0)?),
        };
        let negative_slope = number(class, cfg, "negative_slope", 0.0)?;
        let threshold = number(class, cfg, "threshold", 0.0)?;
        if max_value.is_some_and(|m| m < 0.0) || negative_slope < 0.0 || threshold < 0.0 {
            return unsupported(format!(
                "{class} '{}' with a negative max_value, negative_slope or threshold (Keras refuses them too)",
                c.name
            ));
        }
        Ok(ReluSpec {
            name: c.name.clone(),
            max_value,
            negative_slope,
            threshold,
            trainable: c.trainable,
        })
    }
}
