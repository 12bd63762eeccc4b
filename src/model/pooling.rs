//! Keras's `MaxPooling1D/2D` and `AveragePooling1D/2D` (channels last) as TensorFlow computes them:
//! `valid` or `same` padding (the smaller half before), the windows gathered with `index_select` so
//! that the gradient flows through them. Max pooling sends each window's gradient to its first
//! maximum in row-major order, as TensorFlow's `MaxPoolGrad` does (windows that overlap each send
//! their own); average pooling divides by the count of real values in the window, padding left out.

use crate::error::Result;
use crate::model::dialect::{Format, Res, check_keys};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use crate::model::spatial::{
    Windows, channels_last, checked, gather_windows, int_tuple, merge_members, same_padding,
    split_channels, split_members,
};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a pooling keeps of each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolMode {
    Max,
    Average,
}

/// Keras's pooling classes: mode and spatial axes.
const CLASSES: [(PoolMode, usize, &str); 4] = [
    (PoolMode::Max, 1, "MaxPooling1D"),
    (PoolMode::Max, 2, "MaxPooling2D"),
    (PoolMode::Average, 1, "AveragePooling1D"),
    (PoolMode::Average, 2, "AveragePooling2D"),
];

/// `MaxPooling{1,2}D` / `AveragePooling{1,2}D(pool_size, strides, padding)`, one entry per spatial
/// axis in `pool_size` and `strides`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolingSpec {
    pub name: String,
    pub mode: PoolMode,
    pub pool_size: Vec<usize>,
    pub strides: Vec<usize>,
    /// TensorFlow's `same` padding (else `valid`).
    pub same: bool,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn pooling_class(l: &PoolingSpec) -> &'static str {
    CLASSES
        .iter()
        .find(|(m, a, _)| *m == l.mode && *a == l.pool_size.len())
        .map_or("Pooling", |(_, _, c)| c)
}

impl PoolingSpec {
    /// The windows on each spatial axis of an input of `spatial` dims.
    fn windows(&self, spatial: &[usize]) -> Result<Vec<Windows>> {
        spatial
            .iter()
            .zip(self.pool_size.iter().zip(&self.strides))
            .map(|(&len, (&size, &stride))| Windows::new(len, size, stride, self.same))
            .collect()
    }
}

impl Layer for PoolingSpec {
    named_layer!(by pooling_class);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let (spatial, c) = split_channels(input, self.pool_size.len())?;
        let mut dims: Vec<usize> = self.windows(spatial)?.iter().map(|w| w.out).collect();
        dims.push(c);
        checked(dims)
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let (mut b, rn) = merge_members(x)?;
        let d = self.pool_size.len();
        let w = self.windows(&b.dims()[1..=d])?;
        for (a, win) in w.iter().enumerate() {
            let (before, after) = (win.before, win.after());
            if before + after > 0 {
                // Max pooling repeats the edge value (it never beats the window's own maximum,
                // and comes before it only as a copy of the same value); averaging pads zeros.
                b = match self.mode {
                    PoolMode::Max => b.pad_with_same(a + 1, before, after)?,
                    PoolMode::Average => b.pad_with_zeros(a + 1, before, after)?,
                };
            }
        }
        let g = gather_windows(&b, &w)?;
        let k = d + 1;
        let out = match self.mode {
            PoolMode::Max => {
                // candle's argmax keeps the first of equal maxima: TensorFlow's choice.
                let first = g.argmax_keepdim(k)?;
                g.gather(&first, k)?.squeeze(k)?
            }
            PoolMode::Average => {
                let counts = real_counts(&w, x)?;
                g.sum(k)?.broadcast_div(&counts)?
            }
        };
        split_members(&out, rn)
    }

    fn config(&self, _: Format) -> Value {
        json!({
            "pool_size": self.pool_size,
            "padding": if self.same { "same" } else { "valid" },
            "strides": self.strides,
            "data_format": "channels_last",
        })
    }
}

/// `[1, o1, .., od, 1]`: how many real values (not padding) each window holds, in `like`'s dtype.
fn real_counts(w: &[Windows], like: &Tensor) -> Result<Tensor> {
    let per_axis: Vec<Vec<f64>> = w
        .iter()
        .map(|win| {
            let real: Vec<bool> = win.real().collect();
            real.chunks(win.size)
                .map(|c| c.iter().filter(|&&r| r).count() as f64)
                .collect()
        })
        .collect();
    let mut counts = vec![1.0f64];
    for axis in &per_axis {
        counts = counts
            .iter()
            .flat_map(|&c| axis.iter().map(move |&n| c * n))
            .collect();
    }
    let mut dims = vec![1];
    dims.extend(w.iter().map(|win| win.out));
    dims.push(1);
    Ok(Tensor::from_vec(counts, dims, like.device())?.to_dtype(like.dtype())?)
}

impl KerasLayer for PoolingSpec {
    const CLASSES: &'static [&'static str] = &[
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
    ];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(
            class,
            cfg,
            &["pool_size", "strides", "padding", "data_format"],
        )?;
        channels_last(class, cfg)?;
        let (mode, axes) = CLASSES
            .iter()
            .find(|(_, _, n)| *n == class)
            .map(|(m, a, _)| (*m, *a))
            .unwrap_or((PoolMode::Max, 2));
        let pool_size = int_tuple(class, cfg, "pool_size", axes, 1)?.unwrap_or(vec![2; axes]);
        let strides = int_tuple(class, cfg, "strides", axes, 1)?.unwrap_or(pool_size.clone());
        Ok(PoolingSpec {
            name: c.name.clone(),
            mode,
            pool_size,
            strides,
            same: same_padding(class, cfg)?,
            trainable: c.trainable,
        })
    }
}
