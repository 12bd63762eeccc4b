//! Keras's `Conv1D` and `Conv2D` layers (channels last): their config both ways, their weights
//! (kernel `(k..., in / groups, filters)`, optional bias) and their forward pass: the window's taps
//! (`window`) side by side, per group, through the fused Dense op (`ops::dense`) with the bias and
//! the activation; with one group and more than one tap, the direct op `kernels::conv` computes the
//! same numbers without keeping the taps for the backward pass.

use crate::error::Result;
use crate::model::dialect::{
    Format, Res, check_keys, initializer_json, malformed, parse_activation, parse_initializer,
    require_null,
};
use crate::model::kernels::affine::Post;
use crate::model::kernels::conv as conv_kernel;
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::ops;
use crate::model::shape::{MAX_UNITS, Shape};
use crate::model::window::Window;
use crate::model::{Activation, Initializer};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Conv1D` / `Conv2D(filters, kernel_size, strides, padding, dilation_rate, groups, activation,
/// use_bias, kernel_initializer, bias_initializer)`; the window's rank says which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvSpec {
    pub name: String,
    pub filters: usize,
    pub window: Window,
    pub groups: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: Initializer,
    pub bias_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn class_of(c: &ConvSpec) -> &'static str {
    if c.window.rank() == 1 {
        "Conv1D"
    } else {
        "Conv2D"
    }
}

/// The bias of a layer, or zeros `[R, width]` for one without (`use_bias=False`).
pub(crate) fn bias_or_zeros(
    s: &Step,
    at: usize,
    r: usize,
    width: usize,
    like: &Tensor,
) -> Result<Tensor> {
    Ok(match s.w.get(at) {
        Some(b) => b.clone(),
        None => Tensor::zeros((r, width), like.dtype(), like.device())?,
    })
}

/// `act` on `y`, fused into the Dense op where it can be; the activation to apply after it.
pub(crate) fn split_activation(act: Activation, logits: bool) -> (ops::Fused, Option<Activation>) {
    let act = if logits { Activation::Linear } else { act };
    match act.fused() {
        Some(f) => (f, None),
        None => (ops::Fused::Linear, Some(act)),
    }
}

impl ConvSpec {
    /// The output's dims for `x [R, N, spatial..., C]`: `[R, N, out spatial..., filters]`.
    fn out_dims(&self, x: &Tensor) -> Result<Vec<usize>> {
        let mut dims = x.dims().to_vec();
        let last = dims.len() - 1;
        for (a, (out, _)) in self
            .window
            .geometry(&dims[2..last])?
            .into_iter()
            .enumerate()
        {
            dims[2 + a] = out;
        }
        dims[last] = self.filters;
        Ok(dims)
    }

    /// `forward` with `post` (the BatchNormalization after this layer, in inference) applied as
    /// the output is written, bit for bit the two layers' values. `None` where the layer's output
    /// is not one op's (groups, or an activation the op cannot apply itself).
    pub(crate) fn forward_post(&self, x: &Tensor, s: Step, post: &Post) -> Result<Option<Tensor>> {
        let (fused, after) = split_activation(self.activation, s.logits);
        if self.groups != 1 || after.is_some() || x.rank() != self.window.rank() + 3 {
            return Ok(None);
        }
        let kernel = &s.w[0];
        let bias = bias_or_zeros(&s, 1, kernel.dim(0)?, self.filters, x)?;
        let dims = self.out_dims(x)?;
        let y = if self.window.taps() > 1 {
            conv_kernel::conv_post(x, &self.window, kernel, &bias, fused, Some(post))?
        } else {
            conv_kernel::taps_dense_post(
                &self.window.tap_inputs(x)?,
                kernel,
                &bias,
                fused,
                Some(post),
            )?
        };
        Ok(Some(y.reshape(dims)?))
    }
}

impl Layer for ConvSpec {
    named_layer!(by class_of);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let c = input.last();
        if !c.is_multiple_of(self.groups) {
            return Err(crate::error::Error::invalid(
                "shape",
                format!(
                    "{c} input channels are not divisible by groups={}",
                    self.groups
                ),
            ));
        }
        self.window.output_shape(input, self.filters)
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    /// Kernel `(k..., channels / groups, filters)`, then the bias when the layer has one. Fans as
    /// Keras computes them from the kernel's shape: `taps * channels / groups` in,
    /// `taps * filters` out.
    fn weights(&self, channels: usize) -> Vec<WeightSpec> {
        let cin = channels / self.groups;
        let mut shape = self.window.kernel_size.clone();
        shape.extend([cin, self.filters]);
        let taps = self.window.taps();
        let mut w = vec![WeightSpec {
            name: "kernel",
            shape,
            trainable: true,
            initializer: self.kernel_initializer.clone(),
            fans: (taps * cin, taps * self.filters),
        }];
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

    /// `x [R, N, spatial..., C]` to `[R, N, out spatial..., filters]`.
    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let kernel = &s.w[0];
        let r = kernel.dim(0)?;
        let bias = bias_or_zeros(&s, 1, r, self.filters, x)?;
        if x.rank() != self.window.rank() + 3 {
            return Err(crate::error::Error::invalid(
                "shape",
                format!(
                    "{} takes input of rank {}, got {:?}",
                    self.name,
                    self.window.rank() + 3,
                    x.dims()
                ),
            ));
        }
        let mut dims = x.dims().to_vec();
        let last = dims.len() - 1;
        let (cin, fo) = (dims[last] / self.groups, self.filters / self.groups);
        dims = self.out_dims(x)?;
        let kdim = kernel.rank() - 1;
        let (y, after) = if self.groups == 1 {
            let (fused, after) = split_activation(self.activation, s.logits);
            let y = if self.window.taps() > 1 {
                // One op that keeps only its input for the backward pass (no taps, no patches).
                conv_kernel::conv(x, &self.window, kernel, &bias, fused)?
            } else {
                conv_kernel::taps_dense(&self.window.tap_inputs(x)?, kernel, &bias, fused)?
            };
            (y, after)
        } else {
            let taps = self.window.tap_inputs(x)?;
            // Each group's filters see only its own channels; the activation (softmax spans every
            // filter) comes after the groups are joined.
            let mut outs = Vec::with_capacity(self.groups);
            for g in 0..self.groups {
                let tg: Vec<Tensor> = taps
                    .iter()
                    .map(|t| t.narrow(last, g * cin, cin))
                    .collect::<candle_core::Result<_>>()?;
                let kg = kernel.narrow(kdim, g * fo, fo)?;
                let bg = bias.narrow(1, g * fo, fo)?;
                outs.push(conv_kernel::taps_dense(&tg, &kg, &bg, ops::Fused::Linear)?);
            }
            let act = if s.logits {
                Activation::Linear
            } else {
                self.activation
            };
            (Tensor::cat(&outs, 2)?, Some(act))
        };
        let y = y.reshape(dims)?;
        Ok(match after {
            Some(a) => a.apply(&y)?,
            None => y,
        })
    }

    fn config(&self, format: Format) -> Value {
        conv_config(
            json!({"filters": self.filters}),
            &self.window,
            json!({
                "groups": self.groups,
                "activation": self.activation.keras_name(),
                "use_bias": self.use_bias,
                "kernel_initializer": initializer_json(&self.kernel_initializer, format),
                "bias_initializer": initializer_json(&self.bias_initializer, format),
            }),
            NULLS,
        )
    }
}

/// The settings a Conv layer must leave null.
const NULLS: &[&str] = &[
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
];

/// A convolution's config: `head`'s keys, the window's, `rest`'s, then each of `nulls` (the
/// regularizers and constraints this tool refuses) as null.
pub(crate) fn conv_config(head: Value, window: &Window, rest: Value, nulls: &[&str]) -> Value {
    let mut cfg = head;
    if let (Some(obj), Value::Object(rest)) = (cfg.as_object_mut(), rest) {
        obj.extend(window.config());
        obj.extend(rest);
        obj.extend(nulls.iter().map(|k| (k.to_string(), Value::Null)));
    }
    cfg
}

/// The keys a layer reads: the window's and `own`.
pub(crate) fn known_keys(own: &[&'static str]) -> Vec<&'static str> {
    [crate::model::window::KEYS, own].concat()
}

/// A positive count no larger than this tool's width limit (`filters`, `groups`,
/// `depth_multiplier`).
pub(crate) fn count(what: &str, cfg: &Value, key: &str, default: Option<usize>) -> Res<usize> {
    match cfg.get(key) {
        None | Some(Value::Null) => match default {
            Some(d) => Ok(d),
            None => malformed(format!("{what} has no '{key}'")),
        },
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= MAX_UNITS as u64 => Ok(n as usize),
            _ => malformed(format!(
                "{what} {key} {v} is not a positive integer within this tool's limit"
            )),
        },
    }
}

impl KerasLayer for ConvSpec {
    const CLASSES: &'static [&'static str] = &["Conv1D", "Conv2D"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let what = format!("{} '{}'", c.class, c.name);
        check_keys(
            c.class,
            cfg,
            &known_keys(&[
                "filters",
                "groups",
                "activation",
                "use_bias",
                "kernel_initializer",
                "bias_initializer",
            ]),
        )?;
        require_null(c.class, cfg, NULLS)?;
        require_null(c.class, cfg, &["lora_rank"])?;
        let rank = if c.class == "Conv1D" { 1 } else { 2 };
        let filters = count(&what, cfg, "filters", None)?;
        let groups = count(&what, cfg, "groups", Some(1))?;
        if !filters.is_multiple_of(groups) {
            return malformed(format!(
                "{what}: filters {filters} are not divisible by groups {groups}"
            ));
        }
        Ok(ConvSpec {
            name: c.name.clone(),
            filters,
            window: Window::from_config(&what, cfg, rank, false)?,
            groups,
            activation: parse_activation(cfg.get("activation"), c.keras2)?,
            use_bias: cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
            kernel_initializer: parse_initializer(
                cfg.get("kernel_initializer"),
                Initializer::GlorotUniform,
            )?,
            bias_initializer: parse_initializer(cfg.get("bias_initializer"), Initializer::Zeros)?,
            trainable: c.trainable,
        })
    }
}
