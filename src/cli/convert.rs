//! `keras-transfer convert`: a model file rewritten in another format (by the output's extension).

use crate::cli::args::ConvertArgs;
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::checkpoint::convert_model;

pub fn run(a: ConvertArgs) -> Result<()> {
    let m = load_model(&a.input)?;
    Ok(convert_model(&m, &a.output, a.format.map(Into::into))?)
}
