//! ONNX models served natively: ONNX Runtime (through `ort`, loaded dynamically) runs
//! each model, loaded once into an optimized session on a dedicated thread that batches
//! whatever requests are waiting into one run.
//!
//! - [`library`] finds (or obtains) `libonnxruntime` and starts the environment once;
//! - [`decode`] turns a request body into rows of features (plain rows straight from
//!   the bytes, in `decode_fast`);
//! - [`model`] loads a model, learns the shape of its outputs and runs rows;
//! - [`encode`] writes answers as JSON;
//! - [`instance`] is the `Runtime`/`Instance` pair the scheduler drives.

pub mod decode;
mod decode_fast;
pub mod encode;
pub mod instance;
pub mod library;
pub mod model;

pub use instance::{OnnxConfig, OnnxRuntime};
pub use library::{LibraryConfig, OrtLibrary};
pub use model::{Label, LoadedModel, Prediction, RowAnswer};
