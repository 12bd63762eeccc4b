//! Direct CPU kernels over raw float slices for the convolution layers' hot paths, one file per
//! kernel family; each computes the same float operations in the same order as the generic candle
//! path it replaces, so its numbers are those of that path.

pub(crate) mod affine;
pub(crate) mod depthwise;
pub(crate) mod relu6;
pub(crate) mod variance;
