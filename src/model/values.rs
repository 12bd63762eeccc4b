//! Float tensors to and from plain `f64` values, in a model's dtype.

use crate::error::Result;
use candle_core::{DType, Device, Tensor};

/// A tensor of `dtype` (F32 or F64) holding `values` (rounded to nearest for F32).
pub fn values_tensor(
    values: Vec<f64>,
    shape: impl Into<candle_core::Shape>,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    Ok(match dtype {
        DType::F64 => Tensor::from_vec(values, shape, device)?,
        _ => {
            let v: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
            Tensor::from_vec(v, shape, device)?.to_dtype(dtype)?
        }
    })
}

/// A variable of `dtype` (F32 or F64) holding `values` (rounded to nearest for F32), made with
/// one copy (`Var::from_tensor` would copy a tensor made first).
pub fn values_var(
    values: &[f64],
    shape: impl Into<candle_core::Shape>,
    dtype: DType,
    device: &Device,
) -> Result<candle_core::Var> {
    Ok(match dtype {
        DType::F64 => candle_core::Var::from_vec(values.to_vec(), shape, device)?,
        DType::F32 => {
            let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            candle_core::Var::from_vec(v, shape, device)?
        }
        _ => candle_core::Var::from_tensor(&values_tensor(values.to_vec(), shape, dtype, device)?)?,
    })
}

/// A float tensor's values, flattened, as f64 (exact for F32 and F64).
pub fn values_of(t: &Tensor) -> Result<Vec<f64>> {
    Ok(match t.dtype() {
        DType::F64 => t.flatten_all()?.to_vec1::<f64>()?,
        _ => t
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect(),
    })
}
