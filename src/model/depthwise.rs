//! Keras's `DepthwiseConv2D` and `DepthwiseConv1D` layers (channels last): each input channel
//! convolved with its own `depth_multiplier` filters, output channel `c * depth_multiplier + m` as
//! Keras orders them; their config both ways, their weights (kernel `(k..., channels,
//! depth_multiplier)`, optional bias) and their forward pass over the window's taps (`window`).

use crate::error::Result;
use crate::model::conv::{bias_or_zeros, conv_config, count, known_keys};
use crate::model::dialect::{
    Format, Res, check_keys, initializer_json, malformed, parse_activation, parse_initializer,
    require_null,
};
use crate::model::kernels::affine::Post;
use crate::model::kernels::depthwise::depthwise_sum;
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::shape::Shape;
use crate::model::window::Window;
use crate::model::{Activation, Initializer};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `DepthwiseConv1D` / `DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier,
/// dilation_rate, activation, use_bias, depthwise_initializer, bias_initializer)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthwiseSpec {
    pub name: String,
    pub window: Window,
    pub depth_multiplier: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub depthwise_initializer: Initializer,
    pub bias_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn class_of(d: &DepthwiseSpec) -> &'static str {
    if d.window.rank() == 1 {
        "DepthwiseConv1D"
    } else {
        "DepthwiseConv2D"
    }
}

/// The depthwise kernel's weight spec: `(k..., channels, multiplier)`, fans as Keras computes them
/// from that shape (`taps * channels` in, `taps * multiplier` out).
pub(crate) fn depthwise_weight(
    name: &'static str,
    window: &Window,
    channels: usize,
    multiplier: usize,
    init: &Initializer,
) -> WeightSpec {
    let mut shape = window.kernel_size.clone();
    shape.extend([channels, multiplier]);
    WeightSpec {
        name,
        shape,
        trainable: true,
        initializer: init.clone(),
        fans: (window.taps() * channels, window.taps() * multiplier),
    }
}

/// The depthwise sums of `x [R, N, spatial..., C]` over `window` with `kernel [R, k..., C, M]`,
/// `[R, N * positions, C * M]`, and the output's dims `[R, N, out spatial..., C]` (channels before
/// the multiplier), computed by the direct kernel (`kernels::depthwise`: the numbers of
/// `depthwise_sum` over the taps, and a direct gradient) in inference and in training.
pub(crate) fn depthwise_taps(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
) -> Result<(Tensor, Vec<usize>)> {
    if x.rank() == window.rank() + 3 {
        return direct(x, window, kernel, None, None);
    }
    let taps = window.tap_inputs(x)?;
    let dims = taps[0].dims().to_vec();
    Ok((depthwise_sum(&taps, kernel)?, dims))
}

/// The direct kernel's sums and the output's dims (`depthwise_taps`), with `x` padded first by
/// `pads` (zeros before and after per spatial axis) and `post` applied as the sums are written,
/// when given.
fn direct(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
    pads: Option<&[(usize, usize)]>,
    post: Option<&Post>,
) -> Result<(Tensor, Vec<usize>)> {
    let rank = window.rank();
    let mut spatial = x.dims()[2..2 + rank].to_vec();
    if let Some(p) = pads {
        for (n, &(b, a)) in spatial.iter_mut().zip(p) {
            *n += b + a;
        }
    }
    let mut dims = x.dims().to_vec();
    for (a, (o, _)) in window.geometry(&spatial)?.into_iter().enumerate() {
        dims[2 + a] = o;
    }
    let y = crate::model::kernels::depthwise::depthwise_post(x, window, kernel, pads, post)?;
    Ok((y, dims))
}

impl DepthwiseSpec {
    /// `forward` over `x` as a ZeroPadding layer with `pads` (before, after per spatial axis)
    /// would pad it, without writing the padded tensor: the same values, bit for bit (the direct
    /// kernel reads a padded tap as zero); and with `post` (the BatchNormalization after this
    /// layer, in inference) applied as the sums are written, which needs a layer without bias or
    /// activation. `None` when `x` is not an image batch of the window's rank, or `post` is
    /// given to a layer with a bias or an activation.
    pub(crate) fn forward_chain(
        &self,
        x: &Tensor,
        s: Step,
        pads: Option<&[(usize, usize)]>,
        post: Option<&Post>,
    ) -> Result<Option<Tensor>> {
        let rank = self.window.rank();
        let plain = !self.use_bias && (s.logits || self.activation == Activation::Linear);
        if x.rank() != rank + 3
            || pads.is_some_and(|p| p.len() != rank)
            || (post.is_some() && !plain)
        {
            return Ok(None);
        }
        let (y, dims) = direct(x, &self.window, &s.w[0], pads, post)?;
        self.finish(x, s, y, dims).map(Some)
    }

    /// The bias, the shape and the activation after the depthwise sums `y`.
    fn finish(&self, x: &Tensor, s: Step, mut y: Tensor, mut dims: Vec<usize>) -> Result<Tensor> {
        let r = s.w[0].dim(0)?;
        let last = dims.len() - 1;
        dims[last] *= self.depth_multiplier;
        if self.use_bias {
            let b = bias_or_zeros(&s, 1, r, dims[last], x)?;
            y = y.broadcast_add(&b.unsqueeze(1)?)?;
        }
        let y = y.reshape(dims)?;
        Ok(if s.logits {
            y
        } else {
            self.activation.apply(&y)?
        })
    }
}

impl Layer for DepthwiseSpec {
    named_layer!(by class_of);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.window
            .output_shape(input, input.last() * self.depth_multiplier)
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    /// Kernel `(k..., channels, depth_multiplier)` (Keras 3 names it `kernel`), then the bias of
    /// `channels * depth_multiplier` when the layer has one.
    fn weights(&self, channels: usize) -> Vec<WeightSpec> {
        let mut w = vec![depthwise_weight(
            "kernel",
            &self.window,
            channels,
            self.depth_multiplier,
            &self.depthwise_initializer,
        )];
        if self.use_bias {
            w.push(WeightSpec::vector(
                "bias",
                channels * self.depth_multiplier,
                true,
                &self.bias_initializer,
            ));
        }
        w
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let (y, dims) = depthwise_taps(x, &self.window, &s.w[0])?;
        self.finish(x, s, y, dims)
    }

    fn config(&self, format: Format) -> Value {
        conv_config(
            json!({"depth_multiplier": self.depth_multiplier}),
            &self.window,
            json!({
                "activation": self.activation.keras_name(),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializer_json(&self.depthwise_initializer, format),
                "bias_initializer": initializer_json(&self.bias_initializer, format),
            }),
            NULLS,
        )
    }
}

/// The settings a depthwise layer must leave null.
const NULLS: &[&str] = &[
    "depthwise_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "depthwise_constraint",
    "bias_constraint",
];

/// tf.keras 2 writes `groups` (always 1) into the depthwise and separable configs.
pub(crate) fn check_groups(what: &str, cfg: &Value) -> Res<()> {
    match count(what, cfg, "groups", Some(1))? {
        1 => Ok(()),
        g => malformed(format!("{what} groups {g} (a depthwise convolution has 1)")),
    }
}

impl KerasLayer for DepthwiseSpec {
    const CLASSES: &'static [&'static str] = &["DepthwiseConv1D", "DepthwiseConv2D"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let what = format!("{} '{}'", c.class, c.name);
        check_keys(
            c.class,
            cfg,
            &known_keys(&[
                "depth_multiplier",
                "groups",
                "activation",
                "use_bias",
                "depthwise_initializer",
                "bias_initializer",
            ]),
        )?;
        require_null(c.class, cfg, NULLS)?;
        check_groups(&what, cfg)?;
        let rank = if c.class == "DepthwiseConv1D" { 1 } else { 2 };
        Ok(DepthwiseSpec {
            name: c.name.clone(),
            window: Window::from_config(&what, cfg, rank, true)?,
            depth_multiplier: count(&what, cfg, "depth_multiplier", Some(1))?,
            activation: parse_activation(cfg.get("activation"), c.keras2)?,
            use_bias: cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
            depthwise_initializer: parse_initializer(
                cfg.get("depthwise_initializer"),
                Initializer::GlorotUniform,
            )?,
            bias_initializer: parse_initializer(cfg.get("bias_initializer"), Initializer::Zeros)?,
            trainable: c.trainable,
        })
    }
}
