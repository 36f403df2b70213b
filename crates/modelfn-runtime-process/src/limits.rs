//! Memory limits for function processes, with the best mechanism the machine allows:
//!
//! 1. cgroup v2: a child cgroup with `memory.max` (and `memory.swap.max = 0`);
//! 2. cgroup v1: a child of our own memory cgroup with `memory.limit_in_bytes`;
//! 3. otherwise `RLIMIT_AS` (address space), which counts virtual memory: it is set to
//!    `memory_mb` plus [`RLIMIT_HEADROOM_MB`] so that interpreters can start, and an
//!    allocation past it fails inside the function (Python raises `MemoryError`).
//!
//! With a cgroup the kernel kills a process that goes over, and the instance reports
//! `Runtime.OutOfMemory`; the cgroup also gives "Max Memory Used".

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Extra address space allowed under `RLIMIT_AS`, for the interpreter's own mappings.
pub const RLIMIT_HEADROOM_MB: u64 = 1024;

/// The mechanism in effect.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryLimiter {
    CgroupV2 { parent: PathBuf },
    CgroupV1 { parent: PathBuf },
    Rlimit,
}

/// A cgroup made for one process; removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    v2: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl MemoryLimiter {
    /// Finds the best mechanism by trying it: makes and removes a test cgroup.
    pub fn detect() -> MemoryLimiter {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        // cgroup v2: "0::/path", with the memory controller available.
        if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
            let base = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
            let controllers =
                std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                let limiter = MemoryLimiter::CgroupV2 { parent: base };
                if limiter.probe() {
                    return limiter;
                }
            }
        }
        // cgroup v1: "N:memory:/path".
        if let Some(path) = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrl.split(',').any(|c| c == "memory").then_some(path)
        }) {
            let base = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            let limiter = MemoryLimiter::CgroupV1 { parent: base };
            if limiter.probe() {
                return limiter;
            }
        }
        MemoryLimiter::Rlimit
    }

    fn probe(&self) -> bool {
        match self.create(128) {
            Ok(cg) => {
                drop(cg);
                true
            }
            Err(_) => false,
        }
    }

    /// A short description for logs and docs.
    pub fn describe(&self) -> String {
        match self {
            MemoryLimiter::CgroupV2 { parent } => {
                format!("cgroup v2 memory.max under {}", parent.display())
            }
            MemoryLimiter::CgroupV1 { parent } => {
                format!("cgroup v1 memory.limit_in_bytes under {}", parent.display())
            }
            MemoryLimiter::Rlimit => {
                format!("RLIMIT_AS (memory_mb + {RLIMIT_HEADROOM_MB} MB of address space)")
            }
        }
    }

    /// Makes a cgroup limited to `memory_mb` (none for `Rlimit`).
    pub fn create(&self, memory_mb: u32) -> std::io::Result<Option<Cgroup>> {
        let bytes = u64::from(memory_mb) * 1024 * 1024;
        let name = format!(
            "modelfn-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        match self {
            MemoryLimiter::Rlimit => Ok(None),
            MemoryLimiter::CgroupV2 { parent } => {
                let path = parent.join(name);
                std::fs::create_dir(&path)?;
                let cg = Cgroup { path, v2: true };
                std::fs::write(cg.path.join("memory.max"), bytes.to_string())?;
                let _ = std::fs::write(cg.path.join("memory.swap.max"), "0");
                Ok(Some(cg))
            }
            MemoryLimiter::CgroupV1 { parent } => {
                let path = parent.join(name);
                std::fs::create_dir(&path)?;
                let cg = Cgroup { path, v2: false };
                std::fs::write(cg.path.join("memory.limit_in_bytes"), bytes.to_string())?;
                Ok(Some(cg))
            }
        }
    }

    /// The `RLIMIT_AS` value for a function, when that is the mechanism.
    pub fn rlimit_bytes(&self, memory_mb: u32) -> Option<u64> {
        matches!(self, MemoryLimiter::Rlimit)
            .then(|| (u64::from(memory_mb) + RLIMIT_HEADROOM_MB) * 1024 * 1024)
    }
}

impl Cgroup {
    /// Moves a process into the cgroup.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// Peak memory in bytes.
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.path.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the kernel's OOM killer has acted in this cgroup.
    pub fn oom_killed(&self) -> bool {
        if self.v2 {
            let events =
                std::fs::read_to_string(self.path.join("memory.events")).unwrap_or_default();
            return events
                .lines()
                .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"));
        }
        let control =
            std::fs::read_to_string(self.path.join("memory.oom_control")).unwrap_or_default();
        if let Some(n) = control.lines().find_map(|l| l.strip_prefix("oom_kill ")) {
            return n.trim() != "0";
        }
        std::fs::read_to_string(self.path.join("memory.failcnt"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The processes are gone by now; a cgroup with none left can be removed.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
pub fn process_peak_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
