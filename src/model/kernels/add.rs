//! The sum of two tensors of one shape followed by the ReLU or ReLU6 of the activation layer that
//! reads it (a residual block's `Add` then `Activation("relu")`) as one op: the bits of candle's
//! `add` then that activation (`affine::Then`), both inputs getting the activation's gradient as
//! candle's `add` passes it on. The composed ops keep the sum for the backward pass; this op
//! recomputes it from its inputs, which the graph keeps anyway.

use super::affine::Then;
use super::{by_float, cpu_values, msg, values};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

fn forward<T: Float + Send + Sync>(a: &[T], b: &[T], then: Then) -> Vec<T> {
    a.par_iter()
        .zip(b)
        .with_min_len(MIN_LEN)
        .map(|(&a, &b)| then.apply(a + b))
        .collect()
}

fn backward<T: Float + Send + Sync>(a: &[T], b: &[T], g: &[T], then: Then) -> Vec<T> {
    a.par_iter()
        .zip(b)
        .zip(g)
        .with_min_len(MIN_LEN)
        .map(|((&a, &b), &g)| then.grad(a + b, g))
        .collect()
}

/// The fewest elements a thread takes (each element is its own: the bits do not depend on it).
const MIN_LEN: usize = 1 << 14;

struct AddThen(Then);

impl CustomOp2 for AddThen {
    fn name(&self) -> &'static str {
        "keras-add-then"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            return Err(msg("add-then: the inputs must have one shape"));
        }
        by_float!(s1.dtype(), "add-then", T => {
            let v = |s, l| cpu_values::<T>(s, l, "add-then");
            let out = forward::<T>(v(s1, l1)?, v(s2, l2)?, self.0);
            Ok((T::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (as_, al) = a.storage_and_layout();
        let (bs, bl) = b.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        by_float!(a.dtype(), "add-then", T => {
            let v = |s, l| values::<T>(s, l, "add-then");
            let g = backward::<T>(v(&as_, al)?, v(&bs, bl)?, v(&gs, gl)?, self.0);
            let g = Tensor::from_vec(g, a.shape(), a.device())?;
            Ok((Some(g.clone()), Some(g)))
        })
    }
}

/// `then` of `a + b` (one shape).
pub(crate) fn add_then(a: &Tensor, b: &Tensor, then: Then) -> Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, AddThen(then))
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_fused_pair, values};
    use super::*;
    use candle_core::{Device, Var};

    /// The op gives the bits and gradients of candle's `add` then `relu`, or then
    /// `kernels::relu6`, with sums landing exactly on 0 and 6.
    #[test]
    fn the_op_gives_add_then_the_activation_s_bits_and_gradients() {
        let dev = Device::Cpu;
        let n = 3 * MIN_LEN + 77;
        let mut av = values(n, 0.3);
        let mut bv = values(n, 2.1);
        for i in (0..n).step_by(5) {
            (av[i], bv[i]) = if i % 2 == 0 { (2.5, -2.5) } else { (2.5, 0.5) };
        }
        for v in av.iter_mut().chain(bv.iter_mut()) {
            *v *= 2.0;
        }
        let a = Var::from_vec(av, n, &dev).unwrap();
        let b = Var::from_vec(bv, n, &dev).unwrap();
        let g = Tensor::from_vec(values(n, 1.1), a.shape(), &dev).unwrap();
        for then in [Then::Relu, Then::Relu6] {
            let fast = add_then(a.as_tensor(), b.as_tensor(), then).unwrap();
            let sum = (a.as_tensor() + b.as_tensor()).unwrap();
            assert_fused_pair(then, fast, &sum, &g, &[&a, &b]);
        }
    }
}
