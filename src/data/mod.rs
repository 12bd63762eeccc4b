//! Data: sklearn-exact blobs problems, the `Dataset` type, its split and one-hot targets, CSV I/O, and
//! the names a model keeps of its data (`DataSchema`).

pub mod blobs;
pub mod csv;
pub mod dataset;
pub mod ingest;
pub mod schema;

pub use blobs::{BlobsParams, make_blobs};
pub use dataset::Dataset;
pub use schema::DataSchema;
