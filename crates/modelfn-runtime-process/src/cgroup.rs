//! Resource limits for sandboxes, with the best mechanism the machine allows:
//!
//! 1. cgroup v2: one child cgroup with `memory.max` (and `memory.swap.max = 0`),
//!    `pids.max`, `cpu.weight` and `io.weight`;
//! 2. cgroup v1: one child per controller (memory, pids, cpu) below our own cgroups,
//!    with `memory.limit_in_bytes`, `pids.max` and `cpu.shares`;
//! 3. otherwise `RLIMIT_AS` (address space) only: memory_mb plus [`RLIMIT_HEADROOM_MB`],
//!    so that interpreters can start; an allocation past it fails inside the function.
//!
//! The sandbox joins its cgroups in the forked child before `exec` (see
//! [`InstanceCgroup::join_fds`]), so its first instruction and every descendant are
//! counted. CPU is shared in proportion to `memory_mb`, as on Lambda (1,769 MB = one
//! vCPU's weight). An instance's end kills everything left in its cgroups.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Extra address space allowed under `RLIMIT_AS`, for the interpreter's own mappings.
pub const RLIMIT_HEADROOM_MB: u64 = 1024;
/// Memory that buys one vCPU's share of the CPU, as on Lambda.
pub const MB_PER_VCPU: u64 = 1769;

/// The mechanism in effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Cgroups {
    V2 {
        parent: PathBuf,
    },
    V1 {
        memory: PathBuf,
        pids: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
    Rlimit,
}

/// What one instance may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_mb: u32,
    pub pids: u32,
}

/// The cgroups made for one instance; removed on drop.
#[derive(Debug)]
pub struct InstanceCgroup {
    dirs: Vec<PathBuf>,
    memory: PathBuf,
    v2: bool,
    /// `cgroup.procs` of each directory, open for writing, for the child to join.
    procs: Vec<File>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
const PREFIX: &str = "modelfn-";

fn write(path: &Path, value: impl ToString) -> std::io::Result<()> {
    std::fs::write(path, value.to_string())
}

/// The mount point of the cgroup v1 hierarchy that holds `controller`.
fn v1_mount(mounts: &str, controller: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3 && f[2] == "cgroup" && f[3].split(',').any(|o| o == controller))
            .then(|| PathBuf::from(f[1]))
    })
}

/// Our own cgroup path in the v1 hierarchy of `controller`.
fn v1_own(own: &str, controller: &str) -> Option<String> {
    own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrl.split(',')
            .any(|c| c == controller)
            .then(|| path.trim_start_matches('/').to_string())
    })
}

impl Cgroups {
    /// Finds the best mechanism by trying it: makes and removes a test cgroup.
    pub fn detect() -> Cgroups {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
            let base = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
            let controllers =
                std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                let c = Cgroups::V2 { parent: base };
                if c.probe() {
                    return c;
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let dir = |ctrl: &str| Some(v1_mount(&mounts, ctrl)?.join(v1_own(&own, ctrl)?));
        if let Some(memory) = dir("memory") {
            let c = Cgroups::V1 {
                memory,
                pids: dir("pids"),
                cpu: dir("cpu"),
            };
            if c.probe() {
                return c;
            }
        }
        Cgroups::Rlimit
    }

    fn probe(&self) -> bool {
        self.create(Limits {
            memory_mb: 128,
            pids: 64,
        })
        .is_ok()
    }

    /// A short description for logs and docs.
    pub fn describe(&self) -> String {
        match self {
            Cgroups::V2 { parent } => format!(
                "cgroup v2 (memory.max, pids.max, cpu.weight) under {}",
                parent.display()
            ),
            Cgroups::V1 { memory, pids, cpu } => format!(
                "cgroup v1 (memory under {}, pids {}, cpu {})",
                memory.display(),
                if pids.is_some() { "limited" } else { "not limited" },
                if cpu.is_some() { "weighted" } else { "not weighted" },
            ),
            Cgroups::Rlimit => format!(
                "RLIMIT_AS only (memory_mb + {RLIMIT_HEADROOM_MB} MB of address space; no pids limit, no CPU share)"
            ),
        }
    }

    fn parents(&self) -> Vec<PathBuf> {
        match self {
            Cgroups::V2 { parent } => vec![parent.clone()],
            Cgroups::V1 { memory, pids, cpu } => std::iter::once(memory.clone())
                .chain(pids.clone())
                .chain(cpu.clone())
                .collect(),
            Cgroups::Rlimit => Vec::new(),
        }
    }

    /// Makes the cgroups of one instance (none for `Rlimit`).
    pub fn create(&self, limits: Limits) -> std::io::Result<Option<InstanceCgroup>> {
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let memory_bytes = u64::from(limits.memory_mb) * 1024 * 1024;
        let share = |scale: u64, lo: u64, hi: u64| {
            (u64::from(limits.memory_mb) * scale / MB_PER_VCPU).clamp(lo, hi)
        };
        let mut cg = InstanceCgroup {
            dirs: Vec::new(),
            memory: PathBuf::new(),
            v2: matches!(self, Cgroups::V2 { .. }),
            procs: Vec::new(),
        };
        let mut make = |parent: &Path| -> std::io::Result<PathBuf> {
            let dir = parent.join(&name);
            std::fs::create_dir(&dir)?;
            cg.dirs.push(dir.clone());
            Ok(dir)
        };
        match self {
            Cgroups::Rlimit => return Ok(None),
            Cgroups::V2 { parent } => {
                let dir = make(parent)?;
                write(&dir.join("memory.max"), memory_bytes)?;
                let _ = write(&dir.join("memory.swap.max"), 0);
                write(&dir.join("pids.max"), limits.pids)?;
                let _ = write(&dir.join("cpu.weight"), share(100, 1, 10_000));
                let _ = write(&dir.join("io.weight"), share(100, 1, 10_000));
                cg.memory = dir;
            }
            Cgroups::V1 { memory, pids, cpu } => {
                let dir = make(memory)?;
                write(&dir.join("memory.limit_in_bytes"), memory_bytes)?;
                let _ = write(&dir.join("memory.memsw.limit_in_bytes"), memory_bytes);
                cg.memory = dir;
                if let Some(p) = pids {
                    write(&make(p)?.join("pids.max"), limits.pids)?;
                }
                if let Some(c) = cpu {
                    write(&make(c)?.join("cpu.shares"), share(1024, 2, 262_144))?;
                }
            }
        }
        for d in &cg.dirs {
            cg.procs.push(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))?,
            );
        }
        Ok(Some(cg))
    }

    /// The `RLIMIT_AS` value for a function, when that is the mechanism.
    pub fn rlimit_bytes(&self, memory_mb: u32) -> Option<u64> {
        matches!(self, Cgroups::Rlimit)
            .then(|| (u64::from(memory_mb) + RLIMIT_HEADROOM_MB) * 1024 * 1024)
    }

    /// Kills and removes the cgroups that servers no longer running left behind.
    /// Returns how many were swept.
    pub fn sweep_leaked(&self) -> usize {
        let mut swept = 0;
        for parent in self.parents() {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(owner) = name
                    .strip_prefix(PREFIX)
                    .and_then(|r| r.split('-').next())
                    .and_then(|p| p.parse::<i32>().ok())
                else {
                    continue;
                };
                // SAFETY: kill with signal 0 only checks that the process exists.
                let alive = unsafe { libc::kill(owner, 0) } == 0
                    || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                if !alive {
                    kill_members(&e.path(), false);
                    if remove_dir(&e.path()) {
                        swept += 1;
                    }
                }
            }
        }
        swept
    }
}

/// Kills every process in a cgroup directory.
fn kill_members(dir: &Path, v2: bool) {
    if v2 && write(&dir.join("cgroup.kill"), 1).is_ok() {
        return;
    }
    for _ in 0..20 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn remove_dir(dir: &Path) -> bool {
    // A cgroup can be removed once the kernel has reaped its last process.
    for _ in 0..100 {
        if std::fs::remove_dir(dir).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}

impl InstanceCgroup {
    /// The `cgroup.procs` descriptors the child writes `0` to (itself) before `exec`.
    pub fn join_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Moves a running process (a snap-start instance, forked by its template) into the
    /// instance's cgroups.
    pub fn adopt(&self, pid: u32) -> std::io::Result<()> {
        for mut f in &self.procs {
            std::io::Write::write_all(&mut f, pid.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// A number the memory controller keeps, by its v2 or v1 file name.
    fn memory_value(&self, v2: &str, v1: &str) -> Option<u64> {
        let file = if self.v2 { v2 } else { v1 };
        std::fs::read_to_string(self.memory.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Peak memory in bytes.
    pub fn peak_bytes(&self) -> Option<u64> {
        self.memory_value("memory.peak", "memory.max_usage_in_bytes")
    }

    /// Processes in the instance's cgroup now (its whole process tree).
    pub fn members(&self) -> usize {
        std::fs::read_to_string(self.memory.join("cgroup.procs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Whether the kernel's OOM killer has acted in this cgroup.
    pub fn oom_killed(&self) -> bool {
        if self.v2 {
            let events =
                std::fs::read_to_string(self.memory.join("memory.events")).unwrap_or_default();
            return events
                .lines()
                .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"));
        }
        let control =
            std::fs::read_to_string(self.memory.join("memory.oom_control")).unwrap_or_default();
        if let Some(n) = control.lines().find_map(|l| l.strip_prefix("oom_kill ")) {
            return n.trim() != "0";
        }
        std::fs::read_to_string(self.memory.join("memory.failcnt"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    }
}

impl Drop for InstanceCgroup {
    /// Kills whatever is left (a `setsid` grandchild included) and removes the cgroups.
    fn drop(&mut self) {
        self.procs.clear();
        for dir in &self.dirs {
            kill_members(dir, self.v2);
        }
        for dir in &self.dirs {
            remove_dir(dir);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_hierarchies() {
        let mounts = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n";
        assert_eq!(
            v1_mount(mounts, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(v1_mount(mounts, "pids"), None);
        let own = "4:memory:/a/b\n2:cpu,cpuacct:/\n0::/\n";
        assert_eq!(v1_own(own, "memory").as_deref(), Some("a/b"));
        assert_eq!(v1_own(own, "cpu").as_deref(), Some(""));
    }
}
