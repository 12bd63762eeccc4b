//! keras-transfer's integration tests: one target, one module per concern, fixtures made by real
//! sklearn and Keras under `fixtures/` (see `python-check/make_fixtures.py`).

mod blobs;
mod cli;

mod architecture;
mod archives;
mod common;
mod csv_input;
mod data_files;
mod graph;
mod hostile;
mod keras_compile;
mod keras_float64;
mod keras_h5;
mod keras_layers;
mod optimizer_archives;
mod recorded;
mod study;
mod threads;

mod training;
