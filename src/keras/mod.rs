//! Keras's files: the legacy HDF5 checkpoint (`model.h5`), the JSON configs in both dialects (`config`)
//! and the file layout read and written through the HDF5 library (`h5`); Keras 3's `.keras` archive and
//! `.weights.h5` (`archive`); models nested in others (`nested_config`); the model they all read into and write from (`model`).

pub mod archive;
pub mod config;
pub(crate) mod graph_config;
pub mod h5;
pub(crate) mod h5_guard;
pub(crate) mod h5_values;
pub(crate) mod h5_vlen;
pub(crate) mod layer_config;
pub mod limits;
pub mod model;
pub mod nested_config;
pub(crate) mod tfkeras2_optimizer;

pub use config::Format;
pub use h5::{load_h5, save_h5};
pub use model::{CompileSettings, KerasModel};
