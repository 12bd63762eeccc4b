//! `Window`: the sliding window every convolution shares (kernel size, strides, padding, dilation,
//! channels last): its Keras config both ways, the output size and TensorFlow's padding per axis, and
//! the input as seen at each tap of the kernel (`taps`), from which the layers build their sums
//! with candle's differentiable ops.

use crate::error::{Error, Result};
use crate::model::dialect::{Res, malformed, unsupported};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Keras's `padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: only the positions where the whole (dilated) kernel fits.
    Valid,
    /// TensorFlow's `SAME`: `ceil(n / stride)` outputs; the zeros the kernel needs, the smaller half
    /// before, the larger after.
    Same,
    /// 1-D only: `dilation * (kernel - 1)` zeros before, none after (then `valid`).
    Causal,
}

impl Padding {
    fn keras_name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        }
    }
}

/// A convolution's window over `rank` spatial axes (1 for `Conv1D`, 2 for `Conv2D`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub kernel_size: Vec<usize>,
    pub strides: Vec<usize>,
    pub padding: Padding,
    pub dilation_rate: Vec<usize>,
}

/// The keys of a layer config the window reads.
pub const KEYS: &[&str] = &[
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
];

/// Largest kernel side, stride or dilation this tool reads (guards against absurd configs).
const MAX_SIDE: u64 = 1 << 12;

impl Window {
    /// Number of spatial axes.
    pub fn rank(&self) -> usize {
        self.kernel_size.len()
    }

    /// Number of taps of the kernel (`kh * kw`).
    pub fn taps(&self) -> usize {
        self.kernel_size.iter().product()
    }

    /// For spatial axis `a` of `n` positions: the output size and the zeros before and after.
    fn axis(&self, a: usize, n: usize) -> Result<(usize, usize, usize)> {
        let (k, s, d) = (self.kernel_size[a], self.strides[a], self.dilation_rate[a]);
        let span = (k - 1) * d + 1;
        let (before, after) = match self.padding {
            Padding::Valid => (0, 0),
            Padding::Causal => (span - 1, 0),
            Padding::Same => {
                let out = n.div_ceil(s);
                let total = ((out - 1) * s + span).saturating_sub(n);
                (total / 2, total - total / 2)
            }
        };
        let padded = n + before + after;
        if padded < span {
            return Err(Error::invalid(
                "shape",
                format!(
                    "axis {} has {n} positions, fewer than the {span} the kernel spans with padding '{}'",
                    a + 1,
                    self.padding.keras_name()
                ),
            ));
        }
        Ok(((padded - span) / s + 1, before, after))
    }

    /// For the spatial sizes `spatial` of an input: each axis's output size and zeros before.
    pub(crate) fn geometry(&self, spatial: &[usize]) -> Result<Vec<(usize, usize)>> {
        (0..self.rank())
            .map(|a| self.axis(a, spatial[a]).map(|(o, b, _)| (o, b)))
            .collect()
    }

    /// The window over an input of spatial sizes `spatial` as a 2-D plane (a 1-D window: height 1),
    /// for the direct kernels that index the input themselves.
    pub(crate) fn plane(&self, spatial: &[usize]) -> Result<Plane> {
        let geo = self.geometry(spatial)?;
        let two = |v: &[usize], one: usize| -> [usize; 2] {
            if self.rank() == 1 {
                [one, v[0]]
            } else {
                [v[0], v[1]]
            }
        };
        let (out, before): (Vec<usize>, Vec<usize>) = geo.into_iter().unzip();
        Ok(Plane {
            i: two(spatial, 1),
            o: two(&out, 1),
            k: two(&self.kernel_size, 1),
            s: two(&self.strides, 1),
            d: two(&self.dilation_rate, 1),
            p: two(&before, 0),
        })
    }

    /// `plane` for an input that `pads` (zeros before and after, per spatial axis) would pad
    /// first: the window over the padded sizes, indexing the unpadded input (a tap that lands in
    /// those zeros reads padding, as one in the window's own padding does).
    pub(crate) fn plane_padded(&self, spatial: &[usize], pads: &[(usize, usize)]) -> Result<Plane> {
        let padded: Vec<usize> = spatial
            .iter()
            .zip(pads)
            .map(|(&n, &(b, a))| n + b + a)
            .collect();
        if pads.len() != self.rank() || spatial.len() != self.rank() {
            return Err(Error::invalid(
                "shape",
                "zero padding and the window it feeds have different ranks",
            ));
        }
        let mut plane = self.plane(&padded)?;
        let (i, before) = if self.rank() == 1 {
            ([1, spatial[0]], [0, pads[0].0])
        } else {
            ([spatial[0], spatial[1]], [pads[0].0, pads[1].0])
        };
        plane.i = i;
        plane.p = [plane.p[0] + before[0], plane.p[1] + before[1]];
        Ok(plane)
    }

    /// The plane of a direct kernel's input `x [R, N, spatial..., C]` with its kernel
    /// `[R, k..., C, out]`, and `(C, out)`; ranks or channels that do not match are an error naming
    /// `what`.
    pub(crate) fn plane_of(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        what: &str,
    ) -> Result<(Plane, usize, usize)> {
        self.padded_plane_of(x, kernel, what, None)
    }

    /// `plane_of`, with `x` padded first by `pads` when given (`plane_padded`).
    pub(crate) fn padded_plane_of(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        what: &str,
        pads: Option<&[(usize, usize)]>,
    ) -> Result<(Plane, usize, usize)> {
        let (rank, kr) = (self.rank(), kernel.rank());
        if x.rank() != rank + 3 || kr != rank + 3 || x.dim(rank + 2)? != kernel.dim(kr - 2)? {
            return Err(Error::invalid(
                "shape",
                format!("{what} input and kernel ranks or channels do not match"),
            ));
        }
        let spatial = &x.dims()[2..2 + rank];
        let plane = match pads {
            Some(p) => self.plane_padded(spatial, p)?,
            None => self.plane(spatial)?,
        };
        Ok((plane, kernel.dim(kr - 2)?, kernel.dim(kr - 1)?))
    }

    /// The output shape for a per-sample input `(spatial..., channels)`, with `channels` out.
    pub fn output_shape(&self, input: &Shape, channels: usize) -> Result<Shape> {
        let dims = input.dims();
        if dims.len() != self.rank() + 1 {
            let want = if self.rank() == 1 {
                "(None, steps, channels)"
            } else {
                "(None, height, width, channels)"
            };
            return Err(Error::invalid(
                "shape",
                format!("takes input of shape {want}, got {input}"),
            ));
        }
        let mut out = Vec::with_capacity(dims.len());
        for (a, &n) in dims[..self.rank()].iter().enumerate() {
            out.push(self.axis(a, n)?.0);
        }
        out.push(channels);
        Ok(Shape(out))
    }

    /// The input `x [R, N, spatial..., C]` as each tap of the kernel sees it, in the kernel's
    /// row-major tap order: `taps()` tensors `[R, N, out spatial..., C]`; tap `(i, j)` holds
    /// `x_padded[.., o1 * s1 + i * d1, o2 * s2 + j * d2, ..]`.
    pub fn tap_inputs(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut taps = vec![x.clone()];
        for a in 0..self.rank() {
            let dim = 2 + a;
            let n = x.dim(dim)?;
            let (out, before, after) = self.axis(a, n)?;
            let (s, d) = (self.strides[a], self.dilation_rate[a]);
            let mut next = Vec::with_capacity(taps.len() * self.kernel_size[a]);
            for t in &taps {
                let t = if before + after > 0 {
                    t.pad_with_zeros(dim, before, after)?
                } else {
                    t.clone()
                };
                for k in 0..self.kernel_size[a] {
                    let start = k * d;
                    next.push(if s == 1 {
                        t.narrow(dim, start, out)?
                    } else {
                        let rows: Vec<u32> = (0..out).map(|o| (start + o * s) as u32).collect();
                        let rows = Tensor::new(rows.as_slice(), t.device())?;
                        t.index_select(&rows, dim)?
                    });
                }
            }
            taps = next;
        }
        Ok(taps)
    }

    /// The window's keys of a Keras config (`kernel_size`, `strides`, `padding`, `data_format`,
    /// `dilation_rate`), as Keras writes them.
    pub fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kernel_size".into(), json!(self.kernel_size));
        m.insert("strides".into(), json!(self.strides));
        m.insert("padding".into(), json!(self.padding.keras_name()));
        m.insert("data_format".into(), json!("channels_last"));
        m.insert("dilation_rate".into(), json!(self.dilation_rate));
        m
    }

    /// The window of a `rank`-D layer's config (`what` names the layer in messages). `strided_dilation`:
    /// whether the layer takes strides > 1 together with a dilation > 1 (Keras's depthwise layers
    /// do; `Conv` refuses it as Keras does).
    pub fn from_config(what: &str, cfg: &Value, rank: usize, strided_dilation: bool) -> Res<Self> {
        match cfg.get("data_format") {
            None | Some(Value::Null) => {}
            Some(Value::String(f)) if f == "channels_last" => {}
            Some(f) => {
                return unsupported(format!("{what} data_format {f} (only channels_last)"));
            }
        }
        let kernel_size = match cfg.get("kernel_size") {
            None | Some(Value::Null) => return malformed(format!("{what} has no kernel_size")),
            Some(v) => sides(what, "kernel_size", v, rank)?,
        };
        let strides = match cfg.get("strides") {
            None | Some(Value::Null) => vec![1; rank],
            Some(v) => sides(what, "strides", v, rank)?,
        };
        let dilation_rate = match cfg.get("dilation_rate") {
            None | Some(Value::Null) => vec![1; rank],
            Some(v) => sides(what, "dilation_rate", v, rank)?,
        };
        let padding = match cfg.get("padding") {
            None | Some(Value::Null) => Padding::Valid,
            Some(Value::String(p)) => match p.to_lowercase().as_str() {
                "valid" => Padding::Valid,
                "same" => Padding::Same,
                "causal" if rank == 1 => Padding::Causal,
                _ => return unsupported(format!("{what} padding '{p}'")),
            },
            Some(p) => return malformed(format!("{what} padding {p} is not a string")),
        };
        if !strided_dilation
            && strides.iter().any(|&s| s > 1)
            && dilation_rate.iter().any(|&d| d > 1)
        {
            return unsupported(format!(
                "{what} strides {strides:?} with dilation_rate {dilation_rate:?} (Keras refuses strides > 1 together with dilation_rate > 1)"
            ));
        }
        Ok(Window {
            kernel_size,
            strides,
            padding,
            dilation_rate,
        })
    }
}

/// A 1-D or 2-D window over one input as a 2-D one (`Window::plane`), per axis (height, width).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plane {
    /// Input sizes.
    pub(crate) i: [usize; 2],
    /// Output sizes.
    pub(crate) o: [usize; 2],
    /// Kernel sizes.
    pub(crate) k: [usize; 2],
    pub(crate) s: [usize; 2],
    pub(crate) d: [usize; 2],
    /// Zeros before.
    pub(crate) p: [usize; 2],
}

impl Plane {
    /// Taps of the kernel.
    pub(crate) fn taps(&self) -> usize {
        self.k[0] * self.k[1]
    }
    /// Output positions.
    pub(crate) fn positions(&self) -> usize {
        self.o[0] * self.o[1]
    }
    /// Input pixels.
    pub(crate) fn pixels(&self) -> usize {
        self.i[0] * self.i[1]
    }
    /// The input index along axis `a` that output `o` reads at tap `t`, or `None` (padding).
    pub(crate) fn source(&self, a: usize, o: usize, t: usize) -> Option<usize> {
        (o * self.s[a] + t * self.d[a])
            .checked_sub(self.p[a])
            .filter(|&v| v < self.i[a])
    }
}

/// An int or a list of `rank` ints, each in 1..=MAX_SIDE.
fn sides(what: &str, key: &str, v: &Value, rank: usize) -> Res<Vec<usize>> {
    let one = |x: &Value| {
        x.as_u64()
            .filter(|&n| (1..=MAX_SIDE).contains(&n))
            .map(|n| n as usize)
    };
    let parsed = match v {
        Value::Array(a) if a.len() == rank => a.iter().map(one).collect::<Option<Vec<_>>>(),
        Value::Array(_) => None,
        x => one(x).map(|n| vec![n; rank]),
    };
    match parsed {
        Some(p) => Ok(p),
        None => malformed(format!(
            "{what} {key} {v} is not {rank} integer(s) in 1..={MAX_SIDE}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn window(k: usize, s: usize, d: usize, padding: Padding) -> Window {
        Window {
            kernel_size: vec![k],
            strides: vec![s],
            padding,
            dilation_rate: vec![d],
        }
    }

    #[test]
    fn same_padding_puts_the_larger_half_after_as_tensorflow_does() {
        // n = 7, k = 3, s = 2: 4 outputs, (4 - 1) * 2 + 3 - 7 = 2 zeros: 1 before, 1 after.
        assert_eq!(
            window(3, 2, 1, Padding::Same).axis(0, 7).unwrap(),
            (4, 1, 1)
        );
        // n = 8, k = 3, s = 2: 4 outputs, 1 zero, after.
        assert_eq!(
            window(3, 2, 1, Padding::Same).axis(0, 8).unwrap(),
            (4, 0, 1)
        );
        // k = 4, s = 1: 3 zeros, 1 before, 2 after.
        assert_eq!(
            window(4, 1, 1, Padding::Same).axis(0, 5).unwrap(),
            (5, 1, 2)
        );
        // Dilated: k = 3, d = 2 spans 5.
        assert_eq!(
            window(3, 1, 2, Padding::Valid).axis(0, 9).unwrap(),
            (5, 0, 0)
        );
        assert_eq!(
            window(3, 1, 2, Padding::Causal).axis(0, 9).unwrap(),
            (9, 4, 0)
        );
        assert!(window(5, 1, 1, Padding::Valid).axis(0, 4).is_err());
    }

    #[test]
    fn taps_read_the_padded_input_at_their_offsets() {
        // x = 0..7 along one axis, one channel; k = 3, s = 2, same: pad 1 and 1.
        let x = Tensor::arange(0f32, 7., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 7, 1))
            .unwrap();
        let taps = window(3, 2, 1, Padding::Same).tap_inputs(&x).unwrap();
        let v: Vec<Vec<f32>> = taps
            .iter()
            .map(|t| t.flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        assert_eq!(
            v,
            [
                vec![0., 1., 3., 5.],
                vec![0., 2., 4., 6.],
                vec![1., 3., 5., 0.]
            ]
        );
        assert_eq!(taps[0].dtype(), DType::F32);
    }
}
