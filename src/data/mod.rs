//! Data: sklearn-exact blobs problems, the `Dataset` type, its split and one-hot targets, and CSV I/O.

pub mod blobs;
pub mod csv;
pub mod dataset;
pub mod targets;

pub use blobs::{BlobsParams, make_blobs};
pub use dataset::{Dataset, Targets};
