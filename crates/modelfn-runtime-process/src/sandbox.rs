//! One bubblewrap sandbox per instance.
//!
//! bubblewrap (`bwrap`, the sandbox Flatpak runs on) builds the namespaces and the mount
//! tree; modelfn only chooses what goes in. Each instance gets:
//! - its own pid, mount, IPC, UTS and (unless `network = "host"`) network namespaces;
//! - a uid of its own per function: with root, bwrap runs privileged and `setpriv`
//!   (util-linux) drops to the function's uid with no capabilities; without root,
//!   bwrap makes a user namespace and forbids further ones;
//! - a root of its own: `/usr` (and the merged-`/usr` links) and a few files of `/etc`
//!   read-only, a fresh `/proc` and `/dev`, the code read-only at `/var/task`, the
//!   merged layers at `/opt`, the runtime client at `/var/runtime`, a sized tmpfs at
//!   `/tmp` and a small one at `/dev/shm`; all else read-only. Nothing else of the host:
//!   not its `/proc`, `/tmp`, `/dev/shm`, homes or modelfn's data directory;
//! - `no_new_privs`, a new session (no terminal injection), death with modelfn, and the
//!   seccomp profile of [`crate::seccomp`];
//! - its cgroups, joined by the forked child before `exec` (see [`crate::cgroup`]).
//!
//! The start is a handshake: bwrap reports the sandbox's pid on `--info-fd`, modelfn
//! opens the sandbox's sockets inside its network namespace ([`crate::netns`]), then
//! releases bwrap through `--block-fd` to run the function.

use crate::cgroup::InstanceCgroup;
use crate::handshake::{memfd, pipe, Handshake};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::process::Command;

/// Where functions' uids come from (root only).
#[derive(Debug, Clone, Copy)]
pub struct UidRange {
    pub base: u32,
    pub count: u32,
}

impl Default for UidRange {
    fn default() -> Self {
        UidRange {
            base: 200_000,
            count: 65_536,
        }
    }
}

/// How a sandbox reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// Its own namespace: loopback only, where modelfn serves the Runtime API and the
    /// function's `AWS_ENDPOINT_URL`.
    Isolated,
    /// The host's network (`network = "host"` in the manifest).
    Host,
}

/// What one sandbox mounts and runs.
pub struct Launch<'a> {
    pub code: &'a Path,
    pub runtime_dir: &'a Path,
    pub opt: Option<&'a Path>,
    /// A model-store file, read-only at [`MODEL_DIR`]`/NAME`.
    pub model: Option<(&'a Path, String)>,
    pub tmp_mb: u32,
    pub net: Net,
    pub uid: u32,
    pub argv: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub cgroup: Option<&'a InstanceCgroup>,
    pub rlimit_as: Option<u64>,
    /// Descriptors the function inherits, at the same numbers (a template's control socket).
    pub pass_fds: Vec<RawFd>,
    /// The function is the sandbox's pid 1 (a snap-start template): the processes forked
    /// from it cannot signal it, since a pid namespace's init only receives the signals it
    /// handles, and never SIGKILL or SIGSTOP from inside.
    pub as_pid_1: bool,
}

/// Where a function's model-store file is, inside its sandbox (`MODELFN_MODEL_PATH`).
pub const MODEL_DIR: &str = "/var/model";

/// bubblewrap, found and tried.
pub struct Sandbox {
    bwrap: PathBuf,
    /// With root: bwrap runs privileged and the function drops to its uid with setpriv.
    setpriv: Option<PathBuf>,
    uids: UidRange,
    assigned: Mutex<(HashMap<String, u32>, u32)>,
    seccomp: Vec<Vec<u8>>,
    /// Host directories mounted read-only at the same path (an interpreter outside /usr).
    extra_ro: Vec<PathBuf>,
}

/// Size of a sandbox's `/dev/shm` (at most its `/tmp`).
const SHM_BYTES: u64 = 64 * 1024 * 1024;

const ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
];

fn arg(v: &mut Vec<OsString>, items: &[&str]) {
    v.extend(items.iter().map(OsString::from));
}

impl Sandbox {
    /// Finds bubblewrap (and, with root, setpriv) and proves they work here by starting
    /// one empty sandbox. The error names the fix.
    pub fn detect(uids: UidRange, extra_ro: Vec<PathBuf>) -> Result<Sandbox, String> {
        let find = |name: &str| {
            crate::host::which(name)
                .or_else(|| Some(PathBuf::from(format!("/usr/bin/{name}"))))
                .filter(|p| p.is_file())
        };
        let bwrap = find("bwrap").ok_or(
            "bubblewrap is not installed: install it (`apt-get install bubblewrap`, `dnf install bubblewrap`) so that code functions can run sandboxed",
        )?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let setpriv = if root {
            Some(find("setpriv").ok_or(
                "setpriv (util-linux) is not installed: modelfn needs it to run functions under their own uids",
            )?)
        } else {
            None
        };
        if uids.count == 0 || uids.base.checked_add(uids.count).is_none() || uids.base == 0 {
            return Err(format!(
                "the function uid range {}+{} is not usable",
                uids.base, uids.count
            ));
        }
        let sandbox = Sandbox {
            bwrap,
            setpriv,
            uids,
            assigned: Mutex::new((HashMap::new(), 0)),
            seccomp: crate::seccomp::programs()?,
            extra_ro,
        };
        sandbox.probe()?;
        Ok(sandbox)
    }

    fn probe(&self) -> Result<(), String> {
        let mut args = self.namespace_args(Net::Isolated);
        args.extend(self.root_fs_args(&[]));
        arg(&mut args, &["--", "/usr/bin/true"]);
        let out = std::process::Command::new(&self.bwrap)
            .args(&args)
            .env_clear()
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bwrap.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(format!(
            "bubblewrap cannot create a sandbox here ({why}); as a plain user it needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0), or run modelfn as root"
        ))
    }

    /// How it runs, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.setpriv {
            Some(_) => format!(
                "bubblewrap {} (privileged; each function its own uid from {} to {})",
                self.bwrap.display(),
                self.uids.base,
                self.uids.base + self.uids.count - 1
            ),
            None => format!(
                "bubblewrap {} (user namespace; functions keep modelfn's uid)",
                self.bwrap.display()
            ),
        }
    }

    /// The uid a function's sandboxes run as: one per function, stable while this server
    /// runs (with root; otherwise modelfn's own, inside a user namespace).
    pub fn uid_for(&self, function: &str) -> u32 {
        if self.setpriv.is_none() {
            // SAFETY: getuid has no preconditions.
            return unsafe { libc::getuid() };
        }
        let Ok(mut g) = self.assigned.lock() else {
            return self.uids.base;
        };
        let (map, next) = &mut *g;
        if let Some(uid) = map.get(function) {
            return *uid;
        }
        let uid = self.uids.base + (*next % self.uids.count);
        *next = next.wrapping_add(1);
        map.insert(function.to_string(), uid);
        uid
    }

    fn namespace_args(&self, net: Net) -> Vec<OsString> {
        let mut a = Vec::new();
        arg(
            &mut a,
            &[
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-cgroup-try",
                "--die-with-parent",
                "--new-session",
                "--hostname",
                "modelfn",
            ],
        );
        if net == Net::Isolated {
            arg(&mut a, &["--unshare-net"]);
        }
        if self.setpriv.is_some() {
            arg(
                &mut a,
                &[
                    "--cap-drop",
                    "ALL",
                    "--cap-add",
                    "CAP_SETUID",
                    "--cap-add",
                    "CAP_SETGID",
                    "--cap-add",
                    "CAP_SETPCAP",
                ],
            );
        } else {
            arg(
                &mut a,
                &["--unshare-user", "--disable-userns", "--cap-drop", "ALL"],
            );
        }
        a
    }

    fn root_fs_args(&self, extra: &[(&Path, &str)]) -> Vec<OsString> {
        let mut a = Vec::new();
        arg(&mut a, &["--ro-bind", "/usr", "/usr"]);
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(top) {
                Ok(target) => {
                    a.push("--symlink".into());
                    a.push(target.into_os_string());
                    a.push(top.into());
                }
                Err(_) if Path::new(top).is_dir() => arg(&mut a, &["--ro-bind", top, top]),
                Err(_) => {}
            }
        }
        // bwrap makes the parents of mount points 0700: make them readable first.
        arg(&mut a, &["--perms", "0755", "--dir", "/etc"]);
        for f in ETC {
            arg(&mut a, &["--ro-bind-try", f, f]);
        }
        for p in &self.extra_ro {
            let mut parents: Vec<&Path> = p.ancestors().skip(1).collect();
            parents.pop();
            for dir in parents.into_iter().rev() {
                arg(&mut a, &["--perms", "0755", "--dir"]);
                a.push(dir.as_os_str().to_owned());
            }
            a.push("--ro-bind".into());
            a.push(p.clone().into_os_string());
            a.push(p.clone().into_os_string());
        }
        arg(
            &mut a,
            &[
                "--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/var",
            ],
        );
        for (host, inside) in extra {
            // A file's own directory (`/var/model`), readable as `/var` is.
            match Path::new(inside).parent() {
                Some(dir) if dir != Path::new("/var") && dir != Path::new("/") => {
                    arg(&mut a, &["--perms", "0755", "--dir"]);
                    a.push(dir.as_os_str().to_owned());
                }
                Some(_) | None => {}
            }
            a.push("--ro-bind".into());
            a.push(host.as_os_str().to_owned());
            a.push(inside.into());
        }
        a
    }

    /// The bwrap command for one instance, and the parent's side of its handshake.
    pub fn command(&self, l: &Launch) -> std::io::Result<(Command, Handshake)> {
        let (info_r, info_w) = pipe()?;
        let (block_r, block_w) = pipe()?;
        let filters = self
            .seccomp
            .iter()
            .map(|p| memfd(p))
            .collect::<std::io::Result<Vec<_>>>()?;

        let mut args = self.namespace_args(l.net);
        if l.as_pid_1 {
            arg(&mut args, &["--as-pid-1"]);
        }
        let mut mounts: Vec<(&Path, &str)> =
            vec![(l.code, "/var/task"), (l.runtime_dir, "/var/runtime")];
        if let Some(opt) = l.opt {
            mounts.push((opt, "/opt"));
        }
        if let Some((file, inside)) = &l.model {
            mounts.push((file, inside.as_str()));
        }
        args.extend(self.root_fs_args(&mounts));
        let tmp_bytes = u64::from(l.tmp_mb) * 1024 * 1024;
        arg(&mut args, &["--perms", "1777", "--size"]);
        args.push(tmp_bytes.to_string().into());
        arg(&mut args, &["--tmpfs", "/tmp", "--perms", "1777", "--size"]);
        args.push(SHM_BYTES.min(tmp_bytes).to_string().into());
        // Nothing else is writable: the root and /dev are read-only (without root, the
        // function owns them inside its user namespace and could fill them).
        arg(
            &mut args,
            &[
                "--tmpfs",
                "/dev/shm",
                "--remount-ro",
                "/dev",
                "--remount-ro",
                "/",
                "--chdir",
                "/var/task",
            ],
        );
        let fd_arg = |a: &mut Vec<OsString>, flag: &str, fd: RawFd| {
            a.push(flag.into());
            a.push(fd.to_string().into());
        };
        fd_arg(&mut args, "--info-fd", info_w.as_raw_fd());
        fd_arg(&mut args, "--block-fd", block_r.as_raw_fd());
        for f in &filters {
            fd_arg(&mut args, "--add-seccomp-fd", f.as_raw_fd());
        }
        args.push("--".into());
        if let Some(setpriv) = &self.setpriv {
            args.push(setpriv.clone().into_os_string());
            args.push("--reuid".into());
            args.push(l.uid.to_string().into());
            args.push("--regid".into());
            args.push(l.uid.to_string().into());
            arg(
                &mut args,
                &[
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--bounding-set=-all",
                    "--",
                ],
            );
        }
        args.extend(l.argv.iter().cloned());

        let mut cmd = Command::new(&self.bwrap);
        cmd.args(&args)
            .env_clear()
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let inherit: Vec<RawFd> = [info_w.as_raw_fd(), block_r.as_raw_fd()]
            .into_iter()
            .chain(filters.iter().map(AsRawFd::as_raw_fd))
            .chain(l.pass_fds.iter().copied())
            .collect();
        let join: Vec<RawFd> = l.cgroup.map(|c| c.join_fds()).unwrap_or_default();
        let rlimit = l.rlimit_as;
        // SAFETY: between fork and exec only async-signal-safe calls run (prctl, write,
        // fcntl, setrlimit), on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // modelfn's own umask (077) would make the sandbox's directories private
                // to root.
                libc::umask(0o022);
                for fd in &join {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for fd in &inherit {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(bytes) = rlimit {
                    let lim = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child_ends = vec![info_w, block_r];
        child_ends.extend(filters);
        Ok((
            cmd,
            Handshake {
                info: std::fs::File::from(info_r),
                block: std::fs::File::from(block_w),
                child_ends,
            },
        ))
    }
}

/// Everything a started sandbox holds on the host, released by one drop: bubblewrap's
/// process group is killed (the sandbox's pid namespace dies with it), the instance's
/// tasks are aborted, and its cgroups are emptied and removed off the async threads.
pub(crate) struct SandboxGuard {
    function: String,
    /// bubblewrap's pid (the sandbox's outermost process); 0 before it is spawned.
    pub pid: u32,
    /// The sandbox's first process, as the host sees it (bwrap's `child-pid`).
    pub sandbox_pid: u32,
    /// A pidfd of the process that holds the sandbox (its pid 1, or a forked instance),
    /// killed on drop without the risk of a reused pid.
    pub pidfd: Option<std::os::fd::OwnedFd>,
    cgroup: Option<crate::cgroup::InstanceCgroup>,
    /// The Runtime API server, the endpoint and the exit watcher.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A pidfd for `pid` (Linux 5.3+), or `None` where the kernel has none.
pub(crate) fn pidfd(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a fresh descriptor.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

impl SandboxGuard {
    pub fn new(function: String, cgroup: Option<crate::cgroup::InstanceCgroup>) -> Self {
        SandboxGuard {
            function,
            pid: 0,
            sandbox_pid: 0,
            pidfd: None,
            cgroup,
            tasks: Vec::new(),
        }
    }

    pub fn cgroup(&self) -> Option<&crate::cgroup::InstanceCgroup> {
        self.cgroup.as_ref()
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        if let Some(fd) = &self.pidfd {
            // SAFETY: signals the process the pidfd holds; no memory is passed.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
        }
        if self.pid > 0 {
            // SAFETY: kill has no memory effects; the negative pid names the process group
            // bubblewrap leads (spawned with process_group(0)). The sandbox's pid 1 dies
            // with it, and the kernel then kills every process in its pid namespace.
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
                libc::kill(self.pid as i32, libc::SIGKILL);
            }
        }
        for t in &self.tasks {
            t.abort();
        }
        let cgroup = self.cgroup.take();
        let function = std::mem::take(&mut self.function);
        // Emptying and removing cgroups waits for the kernel to reap: not on this thread.
        std::thread::spawn(move || {
            drop(cgroup);
            tracing::debug!(function, "instance stopped");
        });
    }
}
