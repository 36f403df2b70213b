//! Function processes, as on Lambda: each instance is one OS process that polls its own
//! Lambda Runtime API endpoint for events, one at a time.
//!
//! - [`api`] serves the Runtime API (`/2018-06-01/runtime/...`) for one instance, on its
//!   own 127.0.0.1 port, so no process can read or answer another's events;
//! - [`spawn`] builds the process: command, Lambda's environment, an unprivileged user,
//!   a private temporary directory;
//! - [`limits`] enforces `memory_mb` (cgroup v2 `memory.max`, cgroup v1
//!   `memory.limit_in_bytes`, or `RLIMIT_AS`) and reads peak memory;
//! - [`output`] captures stdout/stderr into the log sink, tagged with the request;
//! - [`instance`] ties these together as the `Runtime`/`Instance` the scheduler drives.

pub mod api;
pub mod instance;
pub mod limits;
pub mod output;
pub mod spawn;

pub use instance::{ProcessConfig, ProcessRuntime};
pub use limits::MemoryLimiter;

/// The Python Runtime API client modelfn ships (standard library only).
pub const PYTHON_CLIENT: &str = include_str!("../python/modelfn_runtime.py");
