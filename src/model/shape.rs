//! `Shape`: the shape of one sample of a tensor flowing through a model: Keras's shape without its
//! batch dimension, channels last (`(None, 4)` is `Shape([4])`). Today every layer computes on flat
//! samples (one trailing dimension); the type carries more so that N-D layers can come.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest width of a layer (its last dimension) this tool accepts (guards allocations against
/// absurd configs).
pub const MAX_UNITS: usize = 1 << 20;
/// The most values one sample of any layer's output may have (64 Mi: a 2048x2048x16 activation).
pub const MAX_VALUES: usize = 1 << 26;

/// A tensor's per-sample dimensions (Keras's shape without the leading `None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// A flat sample of `width` features.
    pub fn flat(width: usize) -> Self {
        Shape(vec![width])
    }

    /// The per-sample dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of trailing dimensions (1 for a flat sample).
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The last dimension (the features, or the channels).
    pub fn last(&self) -> usize {
        self.0.last().copied().unwrap_or(1)
    }

    /// Values per sample.
    pub fn size(&self) -> usize {
        self.0.iter().product()
    }

    /// The width of a flat sample; `None` for N-D ones.
    pub fn width(&self) -> Option<usize> {
        match self.0.as_slice() {
            [w] => Some(*w),
            _ => None,
        }
    }

    /// Keras's per-sample shape from a batch shape (`[null, 4]` -> `[4]`): `None` when a dimension
    /// is unknown (null) or zero, or the batch dimension is missing.
    pub fn from_batch_shape(dims: &[Option<u64>]) -> Option<Self> {
        let (_, rest) = dims.split_first()?;
        rest.iter()
            .map(|d| d.filter(|&d| d > 0).map(|d| d as usize))
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
            .map(Shape)
    }
}

/// Keras's notation: `(None, 4)`, `(None, 8, 8, 3)`.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "(None")?;
        for d in &self.0 {
            write!(f, ", {d}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shapes_read_as_keras_writes_them() {
        assert_eq!(
            Shape::from_batch_shape(&[None, Some(4)]),
            Some(Shape::flat(4))
        );
        assert_eq!(
            Shape::from_batch_shape(&[None, Some(8), Some(8), Some(3)]).map(|s| s.size()),
            Some(192)
        );
        assert_eq!(Shape::from_batch_shape(&[None, None]), None);
        assert_eq!(Shape::from_batch_shape(&[None]), None);
        assert_eq!(Shape::flat(5).to_string(), "(None, 5)");
        assert_eq!(Shape(vec![8, 8, 3]).width(), None);
    }
}
