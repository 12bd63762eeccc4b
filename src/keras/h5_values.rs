//! The typed checks of a dataset before its values are read: a float dataset's precision, an
//! optimizer's step count (an integer scalar).

use crate::error::Result;
use crate::keras::h5_guard::Ctx;
use crate::model::FloatDtype;
use hdf5::Dataset;
use hdf5::types::{FloatSize, TypeDescriptor};

/// The float type of a dataset (`what` names it in errors): float32 or float64; anything else
/// (integers, strings, other float sizes) is an error.
pub(crate) fn float_dtype(ctx: &Ctx, ds: &Dataset, what: &str) -> Result<FloatDtype> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| ctx.hdf5(&format!("{what} type"), e))?;
    match desc {
        TypeDescriptor::Float(FloatSize::U4) => Ok(FloatDtype::Float32),
        TypeDescriptor::Float(FloatSize::U8) => Ok(FloatDtype::Float64),
        _ => Err(ctx.not_keras(format!("{what} holds {desc:?} values, expected floats"))),
    }
}

/// An optimizer's step count (`what` names it in errors): an integer scalar, not negative.
pub(crate) fn step_count(ctx: &Ctx, ds: &Dataset, what: &str) -> Result<u64> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| ctx.hdf5(&format!("{what} type"), e))?;
    if !matches!(
        desc,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)
    ) || !ds.shape().is_empty()
    {
        return Err(ctx.not_keras(format!(
            "{what} is {desc:?} of shape {:?}, expected an integer scalar",
            ds.shape()
        )));
    }
    let it = ds.read_scalar::<i64>().map_err(|e| ctx.hdf5(what, e))?;
    u64::try_from(it).map_err(|_| ctx.not_keras(format!("{what} is {it}, a negative step count")))
}
