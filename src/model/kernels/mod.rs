//! Direct CPU kernels over raw float slices for the convolution layers' hot paths, one file per
//! kernel family; each computes the same float operations in the same order as the generic candle
//! path it replaces, so its numbers are those of that path. The helpers here read a tensor's values
//! and pick the float type, for every kernel alike.

pub(crate) mod add;
pub(crate) mod affine;
pub(crate) mod conv;
pub(crate) mod depthwise;
pub(crate) mod pad;
pub(crate) mod relu6;
pub(crate) mod variance;

use candle_core::{CpuStorage, Layout, Result, Storage, WithDType};

fn msg(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(m.to_string())
}

/// A contiguous CPU tensor's values, as `T`; `op` names the kernel in the error otherwise.
fn values<'a, T: WithDType>(s: &'a Storage, l: &Layout, op: &str) -> Result<&'a [T]> {
    let Storage::Cpu(s) = s else {
        return Err(msg(&format!("{op} runs on the CPU only")));
    };
    cpu_values(s, l, op)
}

/// `values` for a CPU storage (a custom op's forward gets those).
fn cpu_values<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(msg(&format!("{op}: a tensor is not contiguous"))),
    }
}

/// Runs `$body` with `$T` the float type of `$dtype` (float32 or float64; any other is an error
/// naming `$op`).
macro_rules! by_float {
    ($dtype:expr, $op:expr, $T:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $T = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $T = f64;
                $body
            }
            _ => Err(candle_core::Error::Msg(format!(
                "{} computes in float32 or float64 only",
                $op
            ))),
        }
    };
}
use by_float;

#[cfg(test)]
pub(crate) mod test_values {
    use candle_core::{Tensor, Var, backprop::GradStore};

    /// Smooth test values in [-3, 3].
    pub fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 3.0)
            .collect()
    }

    /// The float32 bits of a tensor's values.
    pub fn bits(t: &Tensor) -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().map(|v| v.to_bits()).collect()
    }

    /// Asserts that an op applying `then` itself (`fast`) gives the bits of the unfused layer pair,
    /// the op without it (`plain`) followed by the activation layer's own op, and the same
    /// gradient bits for each of `vars` (under the upstream gradient `g`).
    pub fn assert_fused_pair(
        then: super::affine::Then,
        fast: Tensor,
        plain: &Tensor,
        g: &Tensor,
        vars: &[&Var],
    ) {
        let slow = match then {
            super::affine::Then::Relu => plain.relu().unwrap(),
            super::affine::Then::Relu6 => super::relu6::relu6(plain).unwrap(),
            super::affine::Then::Identity => plain.clone(),
        };
        assert_eq!(bits(&fast), bits(&slow), "{then:?}");
        let gf = (fast * g).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (slow * g).unwrap().sum_all().unwrap().backward().unwrap();
        for v in vars {
            let (f, s) = (gf.get(v).unwrap(), gs.get(v).unwrap());
            assert_eq!(bits(f), bits(s), "{then:?}");
        }
    }

    /// Asserts that two gradient stores hold the same gradient of `v` within `tol` (relative).
    pub fn assert_same_gradient(a: &GradStore, b: &GradStore, v: &Var, tol: f32) {
        let get = |g: &GradStore| -> Vec<f32> {
            g.get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let (p, q) = (get(a), get(b));
        assert_eq!(p.len(), q.len());
        assert!(
            p.iter()
                .zip(&q)
                .all(|(p, q)| (p - q).abs() <= tol * (1.0 + q.abs())),
            "{p:?} {q:?}"
        );
    }
}
