//! Function processes, as on Lambda: each instance is one OS process that polls its own
//! Lambda Runtime API endpoint for events, one at a time.
//!
//! - [`sandbox`] runs each instance in its own bubblewrap sandbox (namespaces, its own
//!   uid, a root of its own, a sized `/tmp`, seccomp); [`seccomp`] is its profile,
//!   [`layers`] merges the layers into its `/opt`;
//! - [`cgroup`] limits memory, processes and CPU share, from the first instruction;
//! - [`api`] serves the Runtime API for one instance, on a socket inside the instance's
//!   own network namespace ([`netns`]), so no other process can read or answer its events;
//! - [`spawn`] chooses the command and Lambda's environment inside the sandbox;
//! - [`output`] captures stdout/stderr into the log sink, tagged with the request;
//! - [`launch`] starts one process in a new sandbox; [`instance`] ties these together as
//!   the `Instance` the scheduler drives (a `sandbox::SandboxGuard` releasing what each
//!   holds on the host), `lambda` words exits and shapes as Lambda does, and [`runtime`]
//!   is the `Runtime`, with the server's [`ProcessConfig`];
//! - snap start: [`template`] keeps one initialized process per Python version and
//!   [`restore`] forks instances from it, over a [`control`] socket.

pub mod api;
pub mod cgroup;
pub mod config;
pub mod control;
pub mod handshake;
pub mod host;
pub mod instance;
mod lambda;
pub mod launch;
pub mod layers;
pub mod netns;
pub mod output;
pub mod restore;
pub mod runtime;
pub mod sandbox;
pub mod seccomp;
pub mod spawn;
pub mod template;

pub use cgroup::Cgroups;
pub use config::{ProcessConfig, ServeFn};
pub use runtime::ProcessRuntime;
pub use sandbox::UidRange;

/// The Python Runtime API client modelfn ships (standard library only): its files in
/// `/var/runtime`, the snap-start template and the SnapStart runtime hooks included.
pub const PYTHON_CLIENT: &[(&str, &str)] = &[
    (
        "modelfn_runtime.py",
        include_str!("../python/modelfn_runtime.py"),
    ),
    (
        "modelfn_snapshot.py",
        include_str!("../python/modelfn_snapshot.py"),
    ),
    (
        "snapshot_restore_py.py",
        include_str!("../python/snapshot_restore_py.py"),
    ),
];
