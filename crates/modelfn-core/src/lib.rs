//! Domain types of modelfn: function names, the `modelfn.toml` manifest, invocations,
//! the `Runtime`/`Instance` traits that execution hides behind, and `InvokeError`.
//!
//! This crate knows no HTTP and no async runtime: the gateway, the scheduler and the
//! runtimes all speak in these types.

pub mod async_config;
pub mod duration;
pub mod error;
pub mod function_ref;
pub mod invocation;
pub mod logs;
pub mod manifest;
pub mod name;
pub mod objects;
pub mod observe;
pub mod runtime;
pub mod scaling;
pub mod streams;
pub mod trace;

pub use async_config::AsyncConfig;
pub use error::{Fault, FunctionError, InvokeError};
pub use function_ref::{FunctionRef, Qualifier};
pub use invocation::{Invocation, InvocationOutput, ResponseFormat};
pub use logs::{LogSink, LogStream};
pub use manifest::{
    Access, DoorAuth, FunctionCaller, Manifest, ManifestError, ModelSpec, NetworkMode, Permissions,
    RuntimeClient, RuntimeKind, StoreRef,
};
pub use name::{FunctionName, NameError};
pub use objects::{ObjectEvent, ObjectTrigger};
pub use observe::{
    BatchRun, InvocationObserver, InvocationReport, Observed, Origin, Outcome, Phase, PoolKind,
};
pub use runtime::{BoxFuture, FunctionSpec, Instance, LiveTuning, Runtime, StoredModel};
pub use scaling::ScalingConfig;
pub use streams::{StartingPosition, StreamSource};
