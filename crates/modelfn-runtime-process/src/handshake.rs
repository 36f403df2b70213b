//! The start of a sandbox, as a handshake with bubblewrap: bwrap writes the sandbox's pid
//! (as the host sees it) to `--info-fd` once its namespaces exist, then waits on
//! `--block-fd` until modelfn has opened the sandbox's sockets; the seccomp programs
//! travel in memory files (`--add-seccomp-fd`).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The parent's side of a started sandbox's handshake.
pub struct Handshake {
    pub(crate) info: std::fs::File,
    pub(crate) block: std::fs::File,
    /// The child's ends, closed here once bwrap has been spawned.
    pub(crate) child_ends: Vec<OwnedFd>,
}

pub(crate) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A sealed-enough in-memory file holding `bytes`, positioned at its start.
pub(crate) fn memfd(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: a static C string name; the descriptor is owned below.
    let fd = unsafe { libc::memfd_create(c"modelfn-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(owned);
    f.write_all(bytes)?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
    Ok(OwnedFd::from(f))
}

impl Handshake {
    /// Called once bwrap is spawned: reads the sandbox's pid (as the host sees it) from
    /// bwrap's info JSON, waiting at most `within`.
    pub fn sandbox_pid(&mut self, within: Duration) -> std::io::Result<u32> {
        self.child_ends.clear();
        let deadline = Instant::now() + within;
        let mut text = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            if let Some(pid) = parse_child_pid(&text) {
                return Ok(pid);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: self.info.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: polls one descriptor we own.
            let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
            if ready <= 0 {
                return Err(std::io::Error::other(
                    "bubblewrap did not report the sandbox in time",
                ));
            }
            let n = self.info.read(&mut buf)?;
            if n == 0 || text.len() > 4096 {
                return Err(std::io::Error::other(
                    "bubblewrap exited before starting the sandbox",
                ));
            }
            text.extend_from_slice(&buf[..n]);
        }
    }

    /// Lets the function start.
    pub fn release(mut self) -> std::io::Result<()> {
        self.block.write_all(b"1")
    }
}

fn parse_child_pid(text: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(text).ok()?;
    if !s.contains('}') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(s.trim()).ok()?;
    v.get("child-pid")?
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bwraps_info() {
        assert_eq!(
            parse_child_pid(b"{\n    \"child-pid\": 4242\n}\n"),
            Some(4242)
        );
        assert_eq!(parse_child_pid(b"{\n    \"child-pid\": 42"), None);
    }
}
