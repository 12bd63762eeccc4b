//! `keras-transfer convert`: a model file rewritten in another format (by the output's name:
//! `.h5`/`.hdf5`, `.keras`, `.weights.h5`, `.safetensors`), optionally with the weights of a
//! `.weights.h5` file put into the input's architecture; the optimizer's state kept, or a note on
//! stderr saying why not.

use crate::cli::args::{ConvertArgs, check_format};
use crate::cli::sandbox::load_with_weights_guarded;
use anyhow::Result;
use keras_transfer::checkpoint::{FileKind, convert_model, optimizer_state_lost};

pub fn run(a: ConvertArgs) -> Result<()> {
    let kind = FileKind::of_target(&a.output)?;
    if let Some(f) = a.format {
        check_format(f, kind)?;
    }
    let m = load_with_weights_guarded(&a.input, a.weights.as_deref())?;
    let format = a.format.map(Into::into);
    convert_model(&m, &a.output, format)?;
    // The optimizer's state travels wherever the target holds it; said once when it does not.
    if let Some(why) = optimizer_state_lost(&m, &a.output, format) {
        crate::cli::output::tell_err!(
            "note: {}: the optimizer state is not kept: {why}",
            a.output.display()
        );
    }
    Ok(())
}
