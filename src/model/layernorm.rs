//! Keras's `LayerNormalization` over the features (its `axis` -1 or the input's last): each row normalised by its own mean and (biased)
//! variance, then scaled by gamma and shifted by beta; the same in training and inference.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::batchnorm::{gamma_beta, moments, normalize, rows, scale_and_offset};
use crate::model::channels::Axis;
use crate::model::dialect::{
    Format, Res, check_keys, flag, initializer_json, number, parse_initializer,
};
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `LayerNormalization(axis=-1, epsilon, center, scale)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNormSpec {
    pub name: String,
    /// The normalised axis as the file gave it (`-1`, `[3]`): it must be the input's last.
    #[serde(default)]
    pub axis: Axis,
    pub epsilon: f64,
    pub center: bool,
    pub scale: bool,
    pub beta_initializer: Initializer,
    pub gamma_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for LayerNormSpec {
    named_layer!("LayerNormalization");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.axis.check(input)?;
        Ok(input.clone())
    }

    /// gamma (with `scale`), then beta (with `center`).
    fn weights(&self, width: usize) -> Vec<WeightSpec> {
        scale_and_offset(
            width,
            self.scale.then_some(&self.gamma_initializer),
            self.center.then_some(&self.beta_initializer),
        )
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let shape = x.shape().clone();
        let x = &rows(x)?;
        let (gamma, beta, _) = gamma_beta(s.w, self.scale, self.center)?;
        let (mean, var) = moments(x, 2)?;
        Ok(
            normalize(x, &mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)?
                .reshape(shape)?,
        )
    }

    fn config(&self, format: Format) -> Value {
        let mut v = json!({
            "axis": self.axis.json(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
            "beta_initializer": initializer_json(&self.beta_initializer, format),
            "gamma_initializer": initializer_json(&self.gamma_initializer, format),
            "beta_regularizer": null, "gamma_regularizer": null,
            "beta_constraint": null, "gamma_constraint": null,
        });
        if format == Format::Keras3 {
            v["rms_scaling"] = json!(false);
        }
        v
    }
}

impl KerasLayer for LayerNormSpec {
    const CLASSES: &'static [&'static str] = &["LayerNormalization"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(
            class,
            cfg,
            &[
                "axis",
                "epsilon",
                "center",
                "scale",
                "beta_initializer",
                "gamma_initializer",
            ],
        )?;
        let axis = Axis::channel(class, cfg)?;
        let init = |key: &str, d: Initializer| parse_initializer(cfg.get(key), d);
        Ok(LayerNormSpec {
            name: c.name.clone(),
            axis,
            epsilon: number(class, cfg, "epsilon", 1e-3)?,
            center: flag(cfg, "center", true),
            scale: flag(cfg, "scale", true),
            beta_initializer: init("beta_initializer", Initializer::Zeros)?,
            gamma_initializer: init("gamma_initializer", Initializer::Ones)?,
            trainable: c.trainable,
        })
    }
}
