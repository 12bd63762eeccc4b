//! keras-transfer's integration tests: one target, one module per concern, fixtures made by real
//! sklearn and Keras under `fixtures/` (see `python-check/make_fixtures.py`).

mod blobs;
mod cli;

mod architecture;
mod archives;
mod common;
mod csv_input;
mod data_files;
mod docs;
mod graph;
mod hidden_softmax;
mod hostile;
mod hostile_files;
mod image_folder;
mod images;
mod keras_compile;
mod keras_float64;
mod keras_h5;
mod keras_h5_long;
mod keras_layers;
mod labels;
mod metrics;
mod multilabel;
mod optimizer_archives;
mod process;
mod recorded;
mod study;
mod tfkeras2_optimizer;
mod threads;

mod conv;
mod convnext;
mod elem;
mod nested;
mod pool;
mod training;

mod apps;
mod feature_cache;
mod features;
mod folder_stream;
mod initializers;
mod twophase;
