//! tf.keras 2's optimizer state in its own files (`.h5` `optimizer_weights`, `.keras`
//! `optimizer/vars`): the count, each variable's name (when the file names them) and shape
//! checked against what the compiled optimizer builds in tf.keras 2 (`OptimizerSpec::tfkeras2_layout`)
//! before any value is read, then read into this tool's state (Keras 3's layout).

use crate::error::Result;
use crate::keras::h5_guard::Ctx;
use crate::keras::h5_values::{float_dtype, step_count};
use crate::model::ModelSpec;
use crate::train::optimizer::trainable_weights;
use crate::train::{Compile, OptimizerState};
use hdf5::Dataset;

/// The name tf.keras 2 gives the step count, first of its optimizer variables.
pub(crate) const ITERATION: &str = "iteration:0";

/// Reads tf.keras 2's `n` optimizer variables (`iteration:0` first) of the file's `group`, named
/// `names` in an `.h5` (a `.keras` archive names them `<group>/<i>` only); `open(i)` gives the
/// `i`-th dataset, opened (not read) only once the count fits.
///
/// `Ok(None)`: only a step count of 0, an optimizer compiled but never built. `Some(Err(why))`:
/// a state tf.keras 2's own `load_model` does not restore either (built before layers were
/// frozen), or compile settings this tool cannot train. Any other count, a name of another slot or
/// weight, a shape, type or value that does not fit is an error naming the variable.
pub(crate) fn read_state(
    ctx: &Ctx,
    spec: &ModelSpec,
    compile: Option<std::result::Result<Compile, String>>,
    group: &str,
    names: Option<&[String]>,
    n: usize,
    open: &mut dyn FnMut(usize) -> Result<Dataset>,
) -> Result<Option<std::result::Result<OptimizerState, String>>> {
    let label = |i: usize| match names {
        Some(n) => format!("{group} '{}'", n[i]),
        None => format!("optimizer variable '{group}/{i}'"),
    };
    let opt = match compile {
        None => {
            return Ok(Some(Err(format!(
                "it holds {n} tf.keras 2 optimizer variables but no compile settings"
            ))));
        }
        Some(Err(e)) => return Ok(Some(Err(format!("compiled with {e}")))),
        Some(Ok(c)) => c.optimizer,
    };
    let class = opt.keras_class();
    let layout = opt.tfkeras2_layout(&trainable_weights(spec));
    if n <= 1 {
        let iterations = match n {
            1 => step_count(ctx, &open(0)?, &label(0))?,
            _ => 0,
        };
        if iterations == 0 {
            return Ok(None);
        }
        return Err(ctx.not_keras(format!(
            "'{group}' holds only the step count ({iterations}) after steps were taken; tf.keras 2's {class} on this model has {} variables",
            layout.len() + 1
        )));
    }
    if n != layout.len() + 1 {
        let mut unfrozen = spec.clone();
        unfrozen.freeze_only(&[])?;
        if opt.tfkeras2_layout(&trainable_weights(&unfrozen)).len() + 1 == n {
            return Ok(Some(Err(format!(
                "its {n} tf.keras 2 optimizer variables were built before some layers were frozen; tf.keras 2's {class} on this model has {}",
                layout.len() + 1
            ))));
        }
        return Err(ctx.not_keras(format!(
            "'{group}' holds {n} variables, but tf.keras 2's {class} on this model has {} ({ITERATION}, then {} slots for its {} trainable weights)",
            layout.len() + 1,
            layout.len(),
            trainable_weights(spec).len()
        )));
    }
    let sets = (0..n).map(&mut *open).collect::<Result<Vec<Dataset>>>()?;
    // Every name and declared shape is checked before any value is read.
    if let Some(names) = names
        && names[0] != ITERATION
    {
        return Err(ctx.not_keras(format!(
            "{} comes first, expected tf.keras 2's {ITERATION}",
            label(0)
        )));
    }
    for (i, slot) in layout.iter().enumerate() {
        if let Some(names) = names
            && let Some(why) = slot.mismatch(&names[i + 1])
        {
            return Err(ctx.not_keras(format!("{} {why}", label(i + 1))));
        }
        let shape = sets[i + 1].shape();
        if shape != slot.of.shape {
            return Err(ctx.not_keras(format!(
                "{} has shape {shape:?}, tf.keras 2's {class} on this model needs {:?} (slot '{}' of {}/{})",
                label(i + 1),
                slot.of.shape,
                slot.slot,
                slot.of.layer,
                slot.of.weight
            )));
        }
    }
    let iterations = step_count(ctx, &sets[0], &label(0))?;
    let mut values = Vec::with_capacity(layout.len());
    for (i, ds) in sets.iter().enumerate().skip(1) {
        let what = label(i);
        let found = float_dtype(ctx, ds, &what)?;
        if found != spec.dtype {
            return Err(ctx.not_keras(format!(
                "{what} holds {} values, but the model is {}",
                found.keras_name(),
                spec.dtype.keras_name()
            )));
        }
        let v = ds.read_raw::<f64>().map_err(|e| ctx.hdf5(&what, e))?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(ctx.not_keras(format!("{what} holds NaN or infinite values")));
        }
        values.push(v);
    }
    let state = opt.state_from_tfkeras2(iterations, &layout, values, |v| spec.dtype.round(v));
    Ok(Some(Ok(state)))
}
