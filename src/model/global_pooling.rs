//! Keras's `GlobalAveragePooling1D/2D` and `GlobalMaxPooling1D/2D` (channels last, `keepdims`): the
//! mean or the maximum over every spatial position, per channel. The maximum's gradient is shared
//! equally by tied maxima, as TensorFlow's `reduce_max` gradient shares it.

use crate::error::Result;
use crate::model::dialect::{Format, Res, check_keys, flag};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::pooling::PoolMode;
use crate::model::shape::Shape;
use crate::model::spatial::{channels_last, merge_members, split_channels, split_members};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Keras's global pooling classes: mode and spatial axes.
const CLASSES: [(PoolMode, usize, &str); 4] = [
    (PoolMode::Average, 1, "GlobalAveragePooling1D"),
    (PoolMode::Average, 2, "GlobalAveragePooling2D"),
    (PoolMode::Max, 1, "GlobalMaxPooling1D"),
    (PoolMode::Max, 2, "GlobalMaxPooling2D"),
];

/// `Global{Average,Max}Pooling{1,2}D(keepdims)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalPoolingSpec {
    pub name: String,
    pub mode: PoolMode,
    /// Spatial axes pooled (1 or 2).
    pub axes: usize,
    /// Keep the pooled axes as 1s.
    pub keepdims: bool,
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn global_class(l: &GlobalPoolingSpec) -> &'static str {
    CLASSES
        .iter()
        .find(|(m, a, _)| *m == l.mode && *a == l.axes)
        .map_or("GlobalPooling", |(_, _, c)| c)
}

impl Layer for GlobalPoolingSpec {
    named_layer!(by global_class);

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let (_, c) = split_channels(input, self.axes)?;
        let mut dims = if self.keepdims {
            vec![1; self.axes]
        } else {
            Vec::new()
        };
        dims.push(c);
        Ok(Shape(dims))
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let (b, rn) = merge_members(x)?;
        let (n, c) = (b.dim(0)?, *b.dims().last().unwrap_or(&1));
        let flat = b.reshape((n, (), c))?;
        let pooled = match self.mode {
            PoolMode::Average => {
                let count = Tensor::new(flat.dim(1)? as f64, x.device())?.to_dtype(x.dtype())?;
                flat.sum_keepdim(1)?.broadcast_div(&count)?
            }
            PoolMode::Max => {
                // The value is the maximum itself; the gradient reaches every tied maximum in
                // equal shares (`w`), through a term whose value is exactly zero.
                let top = flat.max_keepdim(1)?.detach();
                let tied = flat.broadcast_eq(&top)?.to_dtype(x.dtype())?;
                let w = tied.broadcast_div(&tied.sum_keepdim(1)?)?;
                let live = (&flat * &w)?.sum_keepdim(1)?;
                let dead = (flat.detach() * &w)?.sum_keepdim(1)?;
                (top + (live - dead)?)?
            }
        };
        let mut dims = vec![n];
        if self.keepdims {
            dims.extend(vec![1; self.axes]);
        }
        dims.push(c);
        split_members(&pooled.reshape(dims)?, rn)
    }

    fn config(&self, _: Format) -> Value {
        json!({"data_format": "channels_last", "keepdims": self.keepdims})
    }
}

impl KerasLayer for GlobalPoolingSpec {
    const CLASSES: &'static [&'static str] = &[
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
    ];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["data_format", "keepdims"])?;
        channels_last(c.class, cfg)?;
        let (mode, axes) = CLASSES
            .iter()
            .find(|(_, _, n)| *n == c.class)
            .map(|(m, a, _)| (*m, *a))
            .unwrap_or((PoolMode::Average, 2));
        Ok(GlobalPoolingSpec {
            name: c.name.clone(),
            mode,
            axes,
            keepdims: flag(cfg, "keepdims", false),
            trainable: c.trainable,
        })
    }
}
