//! What a fit steps (`Optimizer`) and what an optimizer keeps between steps (`OptimizerState`, Keras
//! 3's `optimizer.variables` layout, the layout every model file's state is read into).

use crate::error::Result;
use candle_core::Tensor;

/// One training step's update of the variables an optimizer was built with.
pub trait Optimizer {
    /// Back-propagates `loss` (a `[R]` tensor of per-member losses: member r's gradient comes from its
    /// own loss only) and updates the variables.
    fn backward_step(&mut self, loss: &Tensor) -> Result<()>;

    /// Member `m`'s optimizer variables as Keras lists them (`optimizer.variables`).
    fn state(&self, m: usize) -> Result<OptimizerState>;

    /// Continues from `state` (one model's, as `state` gives it or a Keras file holds it): the same
    /// state for every member.
    fn set_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// An optimizer's variables in Keras 3's order (`optimizer.variables`, the layout of a `.h5` file's
/// `optimizer_weights`): the step count, the learning-rate variable (absent under a schedule), then
/// the state slots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    pub iterations: u64,
    /// The learning-rate variable (a float32 model's holds a float32 value, kept exactly as f64).
    pub learning_rate: Option<f64>,
    /// `(name, values)`: `<layer>_<weight>_<slot>` (`dense_kernel_momentum`), or `variable` for
    /// Nadam's momentum-schedule product; values in the model's dtype, kept exactly as f64.
    pub variables: Vec<(String, Vec<f64>)>,
}
