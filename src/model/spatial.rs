//! What the pooling and shape layers share: reading Keras's spatial settings (an int or a tuple per
//! spatial axis, `(before, after)` pairs, channels-last only), TensorFlow's padding rule (`valid`,
//! `same`: the smaller half of the padding before) and the windows a pooling reads, gathered along
//! one axis at a time so that candle's autograd carries the gradient back through them.

use crate::error::{Error, Result};
use crate::model::dialect::{Res, malformed, unsupported};
use crate::model::shape::Shape;
use candle_core::{Device, Tensor};
use serde_json::{Value, json};

/// The largest pool, stride, padding, crop or size factor this tool reads (guards arithmetic and
/// allocations against absurd configs).
pub const MAX_SPATIAL: usize = 1 << 16;

/// Refuses `data_format` other than channels_last (null means Keras's default, channels_last).
pub(crate) fn channels_last(class: &str, cfg: &Value) -> Res<()> {
    match cfg.get("data_format") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == "channels_last" => Ok(()),
        Some(v) => unsupported(format!("{class} data_format {v} (only channels_last)")),
    }
}

/// A non-negative integer of a config (`min` or more, at most `MAX_SPATIAL`).
fn count(class: &str, key: &str, v: &Value, min: usize) -> Res<usize> {
    match v.as_u64() {
        Some(n) if n as usize >= min && n as usize <= MAX_SPATIAL => Ok(n as usize),
        _ => malformed(format!(
            "{class} '{key}' = {v} (expected an integer from {min} to {MAX_SPATIAL})"
        )),
    }
}

/// Keras's `standardize_tuple`: an int (the same on every axis) or a list of `n` ints, each `min`
/// or more; `None` for a missing or null key.
pub(crate) fn int_tuple(
    class: &str,
    cfg: &Value,
    key: &str,
    n: usize,
    min: usize,
) -> Res<Option<Vec<usize>>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.len() == n => a
            .iter()
            .map(|v| count(class, key, v, min))
            .collect::<Res<Vec<_>>>()
            .map(Some),
        Some(v) if v.is_u64() => Ok(Some(vec![count(class, key, v, min)?; n])),
        Some(v) => malformed(format!("{class} '{key}' = {v} (expected {n} integers)")),
    }
}

/// `(before, after)` amounts per spatial axis (ZeroPadding, Cropping): for one axis an int or a
/// pair; for two an int, a pair (each axis symmetric) or a pair of pairs.
pub(crate) fn pairs(
    class: &str,
    cfg: &Value,
    key: &str,
    axes: usize,
    default: usize,
) -> Res<Vec<(usize, usize)>> {
    let bad = |v: &Value| -> Res<Vec<(usize, usize)>> {
        malformed(format!(
            "{class} '{key}' = {v} (expected an integer, a pair or a pair of pairs)"
        ))
    };
    let one = |v: &Value| -> Res<(usize, usize)> {
        match v {
            Value::Array(p) if p.len() == 2 => {
                Ok((count(class, key, &p[0], 0)?, count(class, key, &p[1], 0)?))
            }
            v if v.is_u64() => {
                let n = count(class, key, v, 0)?;
                Ok((n, n))
            }
            _ => Err(crate::model::dialect::ConfigError::Malformed(format!(
                "{class} '{key}' = {v} (expected an integer or a pair)"
            ))),
        }
    };
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(vec![(default, default); axes]),
        Some(v) if v.is_u64() => {
            let n = count(class, key, v, 0)?;
            Ok(vec![(n, n); axes])
        }
        Some(v @ Value::Array(a)) => {
            if axes == 1 {
                return Ok(vec![one(v)?]);
            }
            if a.len() != axes {
                return bad(v);
            }
            a.iter().map(one).collect()
        }
        Some(v) => bad(v),
    }
}

/// `(before, after)` pairs as Keras writes them: `[b, a]` for one axis, `[[b, a], ...]` for more.
pub(crate) fn pairs_json(p: &[(usize, usize)]) -> Value {
    match p {
        [(b, a)] => json!([b, a]),
        _ => json!(p.iter().map(|(b, a)| json!([b, a])).collect::<Vec<_>>()),
    }
}

/// Keras's `padding` of a pooling or convolution: `valid` or `same` (`causal` and the rest refused).
pub(crate) fn same_padding(class: &str, cfg: &Value) -> Res<bool> {
    let v = cfg.get("padding").unwrap_or(&Value::Null);
    match v.as_str().map(str::to_lowercase).as_deref() {
        _ if v.is_null() => Ok(false),
        Some("valid") => Ok(false),
        Some("same") => Ok(true),
        _ => unsupported(format!("{class} padding {v} (only 'valid' or 'same')")),
    }
}

/// The per-sample spatial dims and channels of `input` for a layer over `axes` spatial axes, or why
/// its rank does not fit.
pub(crate) fn split_channels(input: &Shape, axes: usize) -> Result<(&[usize], usize)> {
    let d = input.dims();
    if d.len() != axes + 1 {
        return Err(Error::invalid(
            "shape",
            format!(
                "expected {} dimensions per sample ({axes} spatial, then channels), got {input}",
                axes + 1
            ),
        ));
    }
    Ok((&d[..axes], d[axes]))
}

/// One axis of a pooling: how many windows, and how much of TensorFlow's padding comes before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    /// The input's length on this axis.
    pub len: usize,
    pub size: usize,
    pub stride: usize,
    /// Output positions.
    pub out: usize,
    /// Padding before the first value (TensorFlow's `same`: the smaller half of the total).
    pub before: usize,
}

impl Windows {
    /// TensorFlow's rule: `valid` gives `floor((len - size) / stride) + 1` windows (none fit: an
    /// error), `same` gives `ceil(len / stride)` with `max((out - 1) * stride + size - len, 0)`
    /// padding, its smaller half before.
    pub fn new(len: usize, size: usize, stride: usize, same: bool) -> Result<Self> {
        if same {
            let out = len.div_ceil(stride);
            let total = ((out - 1) * stride + size).saturating_sub(len);
            return Ok(Windows {
                len,
                size,
                stride,
                out,
                before: total / 2,
            });
        }
        if size > len {
            return Err(Error::invalid(
                "shape",
                format!("a window of {size} does not fit in {len} values ('valid' padding)"),
            ));
        }
        Ok(Windows {
            len,
            size,
            stride,
            out: (len - size) / stride + 1,
            before: 0,
        })
    }

    /// Padding after the last value, so that every window lies inside the padded axis.
    pub fn after(&self) -> usize {
        ((self.out - 1) * self.stride + self.size).saturating_sub(self.len + self.before)
    }

    /// The padded positions each window reads, window after window: `o * stride + j`.
    pub fn indexes(&self, device: &Device) -> Result<Tensor> {
        let ids: Vec<u32> = (0..self.out)
            .flat_map(|o| (0..self.size).map(move |j| (o * self.stride + j) as u32))
            .collect();
        Ok(Tensor::from_vec(ids, self.out * self.size, device)?)
    }

    /// Whether each window position (window after window) reads a real value, not padding.
    pub fn real(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.out).flat_map(move |o| {
            (0..self.size).map(move |j| {
                let p = o * self.stride + j;
                p >= self.before && p < self.before + self.len
            })
        })
    }
}

/// Every window of `x [B, s1, .., sd, C]` (already padded as `w` says) as `[B, o1, .., od, K, C]`,
/// K = the product of the window sizes, each window's values in row-major order (TensorFlow's
/// scan order). Built from `index_select`s, so the gradient flows back to the values read.
pub(crate) fn gather_windows(x: &Tensor, w: &[Windows]) -> Result<Tensor> {
    let d = w.len();
    let mut g = x.contiguous()?;
    for (a, win) in w.iter().enumerate() {
        g = g.index_select(&win.indexes(x.device())?, a + 1)?;
    }
    let b = x.dim(0)?;
    let c = x.dim(d + 1)?;
    // [B, o1*k1, .., od*kd, C] -> [B, o1, k1, .., od, kd, C] -> [B, o1, .., od, k1, .., kd, C].
    let mut split = vec![b];
    for win in w {
        split.extend([win.out, win.size]);
    }
    split.push(c);
    let g = g.reshape(split)?;
    let mut order = vec![0];
    order.extend((0..d).map(|a| 1 + 2 * a));
    order.extend((0..d).map(|a| 2 + 2 * a));
    order.push(2 * d + 1);
    let g = g.permute(order)?.contiguous()?;
    let mut dims = vec![b];
    dims.extend(w.iter().map(|win| win.out));
    dims.push(w.iter().map(|win| win.size).product());
    dims.push(c);
    Ok(g.reshape(dims)?)
}

/// `x [R, N, ...sample]` as `[R*N, ...sample]`, with the `[R, N]` to restore.
pub(crate) fn merge_members(x: &Tensor) -> Result<(Tensor, [usize; 2])> {
    let dims = x.dims();
    if dims.len() < 3 {
        return Err(Error::Internal(format!(
            "a spatial layer got a tensor of shape {dims:?}"
        )));
    }
    let rn = [dims[0], dims[1]];
    let mut flat = vec![dims[0] * dims[1]];
    flat.extend_from_slice(&dims[2..]);
    Ok((x.reshape(flat)?, rn))
}

/// `y [R*N, ...]` back as `[R, N, ...]`.
pub(crate) fn split_members(y: &Tensor, rn: [usize; 2]) -> Result<Tensor> {
    let mut dims = rn.to_vec();
    dims.extend_from_slice(&y.dims()[1..]);
    Ok(y.reshape(dims)?)
}

/// A shape's values, guarded against absurd configs (`MAX_VALUES` per sample).
pub(crate) fn checked(dims: Vec<usize>) -> Result<Shape> {
    let size = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&s| s <= crate::model::shape::MAX_VALUES);
    match size {
        Some(0) => Err(Error::invalid(
            "shape",
            format!("the output {} would hold no values", Shape(dims)),
        )),
        Some(_) => Ok(Shape(dims)),
        None => Err(Error::invalid(
            "shape",
            format!(
                "the output would hold more than {} values per sample",
                crate::model::shape::MAX_VALUES
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorflow_same_padding_puts_the_smaller_half_before() {
        // 7 values, window 3, stride 2: 4 windows, 2 padded values, one before.
        let w = Windows::new(7, 3, 2, true).unwrap();
        assert_eq!((w.out, w.before, w.after()), (4, 1, 1));
        // 9 values, window 4, stride 3: 3 windows, one value of padding, after.
        let w = Windows::new(9, 4, 3, true).unwrap();
        assert_eq!((w.out, w.before, w.after()), (3, 0, 1));
        let w = Windows::new(9, 3, 2, false).unwrap();
        assert_eq!((w.out, w.before, w.after()), (4, 0, 0));
        assert!(Windows::new(2, 3, 1, false).is_err());
        let real: Vec<bool> = Windows::new(3, 2, 2, true).unwrap().real().collect();
        assert_eq!(real, [true, true, true, false]);
    }

    #[test]
    fn settings_read_as_keras_writes_them() {
        let cfg = json!({"a": 2, "b": [1, 3], "c": [[1, 2], [0, 3]], "d": [2, 1], "e": "x"});
        assert_eq!(int_tuple("L", &cfg, "a", 2, 1).unwrap(), Some(vec![2, 2]));
        assert_eq!(int_tuple("L", &cfg, "b", 2, 1).unwrap(), Some(vec![1, 3]));
        assert!(int_tuple("L", &cfg, "b", 1, 1).is_err());
        assert_eq!(int_tuple("L", &cfg, "z", 1, 1).unwrap(), None);
        assert_eq!(pairs("L", &cfg, "a", 2, 0).unwrap(), [(2, 2), (2, 2)]);
        assert_eq!(pairs("L", &cfg, "c", 2, 0).unwrap(), [(1, 2), (0, 3)]);
        assert_eq!(pairs("L", &cfg, "d", 2, 0).unwrap(), [(2, 2), (1, 1)]);
        assert_eq!(pairs("L", &cfg, "d", 1, 0).unwrap(), [(2, 1)]);
        assert!(pairs("L", &cfg, "e", 1, 0).is_err());
        assert_eq!(pairs_json(&[(2, 1)]), json!([2, 1]));
        assert_eq!(pairs_json(&[(1, 2), (0, 3)]), json!([[1, 2], [0, 3]]));
    }
}
