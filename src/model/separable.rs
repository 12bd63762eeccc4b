//! Keras's `SeparableConv2D` and `SeparableConv1D` layers (channels last): a depthwise convolution
//! (`depthwise`) followed by a pointwise (1x1) one through the fused Dense op, then the bias and the
//! activation; their config both ways and their weights (`depthwise_kernel`, `pointwise_kernel`,
//! optional `bias`).

use crate::error::Result;
use crate::model::conv::{bias_or_zeros, conv_config, count, known_keys, split_activation};
use crate::model::depthwise::{check_groups, depthwise_taps, depthwise_weight};
use crate::model::dialect::{
    Format, Res, check_keys, initializer_json, parse_activation, parse_initializer, require_null,
};
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::ops;
use crate::model::shape::Shape;
use crate::model::window::Window;
use crate::model::{Activation, Initializer};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `SeparableConv1D` / `SeparableConv2D(filters, kernel_size, strides, padding, depth_multiplier,
/// dilation_rate, activation, use_bias, depthwise_initializer, pointwise_initializer,
/// bias_initializer)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeparableSpec {
    pub name: String,
    pub filters: usize,
    pub window: Window,
    pub depth_multiplier: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub depthwise_initializer: Initializer,
    pub pointwise_initializer: Initializer,
    pub bias_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn class_of(d: &SeparableSpec) -> &'static str {
    if d.window.rank() == 1 {
        "SeparableConv1D"
    } else {
        "SeparableConv2D"
    }
}

impl Layer for SeparableSpec {
    named_layer!(by class_of);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.window.output_shape(input, self.filters)
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    /// `depthwise_kernel (k..., channels, depth_multiplier)`, `pointwise_kernel (1..., channels *
    /// depth_multiplier, filters)`, then the bias when the layer has one.
    fn weights(&self, channels: usize) -> Vec<WeightSpec> {
        let mid = channels * self.depth_multiplier;
        let mut shape = vec![1; self.window.rank()];
        shape.extend([mid, self.filters]);
        let mut w = vec![
            depthwise_weight(
                "depthwise_kernel",
                &self.window,
                channels,
                self.depth_multiplier,
                &self.depthwise_initializer,
            ),
            WeightSpec {
                name: "pointwise_kernel",
                shape,
                trainable: true,
                initializer: self.pointwise_initializer.clone(),
                fans: (mid, self.filters),
            },
        ];
        if self.use_bias {
            w.push(WeightSpec::vector(
                "bias",
                self.filters,
                true,
                &self.bias_initializer,
            ));
        }
        w
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let (dk, pk) = (&s.w[0], &s.w[1]);
        let r = dk.dim(0)?;
        let (mid, mut dims) = depthwise_taps(x, &self.window, dk)?;
        let last = dims.len() - 1;
        dims[last] = self.filters;
        let bias = bias_or_zeros(&s, 2, r, self.filters, x)?;
        let pk = pk.contiguous()?.reshape((r, mid.dim(2)?, self.filters))?;
        let (fused, after) = split_activation(self.activation, s.logits);
        let y = ops::dense(&mid.contiguous()?, &pk, &bias.contiguous()?, fused)?.reshape(dims)?;
        Ok(match after {
            Some(a) => a.apply(&y)?,
            None => y,
        })
    }

    fn config(&self, format: Format) -> Value {
        conv_config(
            json!({"depth_multiplier": self.depth_multiplier, "filters": self.filters}),
            &self.window,
            json!({
                "activation": self.activation.keras_name(),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializer_json(&self.depthwise_initializer, format),
                "pointwise_initializer": initializer_json(&self.pointwise_initializer, format),
                "bias_initializer": initializer_json(&self.bias_initializer, format),
            }),
            NULLS,
        )
    }
}

/// The settings a separable layer must leave null.
const NULLS: &[&str] = &[
    "depthwise_regularizer",
    "pointwise_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "depthwise_constraint",
    "pointwise_constraint",
    "bias_constraint",
];

impl KerasLayer for SeparableSpec {
    const CLASSES: &'static [&'static str] = &["SeparableConv1D", "SeparableConv2D"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let what = format!("{} '{}'", c.class, c.name);
        check_keys(
            c.class,
            cfg,
            &known_keys(&[
                "depth_multiplier",
                "filters",
                "groups",
                "activation",
                "use_bias",
                "depthwise_initializer",
                "pointwise_initializer",
                "bias_initializer",
                // tf.keras 2 writes the Conv base's kernel_initializer, which the layer never uses.
                "kernel_initializer",
            ]),
        )?;
        require_null(c.class, cfg, NULLS)?;
        require_null(c.class, cfg, &["kernel_regularizer", "kernel_constraint"])?;
        check_groups(&what, cfg)?;
        let rank = if c.class == "SeparableConv1D" { 1 } else { 2 };
        Ok(SeparableSpec {
            name: c.name.clone(),
            filters: count(&what, cfg, "filters", None)?,
            window: Window::from_config(&what, cfg, rank, true)?,
            depth_multiplier: count(&what, cfg, "depth_multiplier", Some(1))?,
            activation: parse_activation(cfg.get("activation"), c.keras2)?,
            use_bias: cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
            depthwise_initializer: parse_initializer(
                cfg.get("depthwise_initializer"),
                Initializer::GlorotUniform,
            )?,
            pointwise_initializer: parse_initializer(
                cfg.get("pointwise_initializer"),
                Initializer::GlorotUniform,
            )?,
            bias_initializer: parse_initializer(cfg.get("bias_initializer"), Initializer::Zeros)?,
            trainable: c.trainable,
        })
    }
}
