//! Data: sklearn-exact blobs problems, the `Dataset` type, its split and one-hot targets, CSV I/O, and
//! the names a model keeps of its data (`DataSchema`).

pub mod arrays;
pub mod blobs;
pub mod classes;
pub mod csv;
pub mod dataset;
pub mod folder_rows;
pub mod image_decode;
pub mod images;
pub mod ingest;
pub mod resize;
pub mod schema;
pub mod table;
pub mod targets;

pub use blobs::{BlobsParams, make_blobs};
pub use dataset::{Dataset, Targets};
pub use schema::DataSchema;
