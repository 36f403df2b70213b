//! A snap-start template's control socket: a unix `SOCK_SEQPACKET` pair, one message per
//! `send`. modelfn sends fork requests with descriptors attached (`SCM_RIGHTS`); with
//! `SO_PASSCRED` set on its end, the kernel attaches the sender's credentials to every
//! message it receives, its pid translated into modelfn's pid namespace, so a message
//! names the process that sent it and no process can claim to be another.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Longest message read from a template; longer ones are cut (and ignored).
pub const MAX_MESSAGE: usize = 8192;

use crate::netns::check;

/// A connected pair: modelfn's end (with `SO_PASSCRED`) and the template's.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both were just created and are owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let one: libc::c_int = 1;
    // SAFETY: sets an int option on a socket we own.
    check(unsafe {
        libc::setsockopt(
            ours.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok((ours, theirs))
}

/// Sends one message with `fds` attached, without waiting: a template that stopped
/// reading gets an error, not a blocked server.
pub fn send(sock: &OwnedFd, body: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let space = cmsg_space(std::mem::size_of_val(fds));
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: body.as_ptr() as *mut libc::c_void,
        iov_len: body.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer has room for one header and `fds` (CMSG_SPACE).
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                std::mem::size_of_val(fds),
            );
        }
    }
    // SAFETY: `msg` points at live buffers.
    let n = unsafe {
        libc::sendmsg(
            sock.as_raw_fd(),
            &msg,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn cmsg_space(len: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic.
    unsafe { libc::CMSG_SPACE(len as u32) as usize }
}

/// One message and the pid (in modelfn's namespace) of the process that sent it.
pub struct Received {
    pub body: Vec<u8>,
    pub pid: u32,
}

/// Blocks for the next message; `None` at the end (the template is gone). Descriptors a
/// template attaches are closed unread; a message without credentials is skipped.
pub fn recv(sock: &OwnedFd) -> io::Result<Option<Received>> {
    loop {
        let mut body = vec![0u8; MAX_MESSAGE];
        let mut control = vec![0u8; cmsg_space(std::mem::size_of::<libc::ucred>()) + 256];
        let mut iov = libc::iovec {
            iov_base: body.as_mut_ptr().cast(),
            iov_len: body.len(),
        };
        // SAFETY: plain data; pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        // SAFETY: `msg` points at live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        let mut pid = None;
        // SAFETY: walks the control messages the kernel wrote, within `msg_controllen`.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                let len = (*c).cmsg_len as usize - (data as usize - c as usize);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                        if len >= std::mem::size_of::<libc::ucred>() =>
                    {
                        let cred = std::ptr::read_unaligned(data.cast::<libc::ucred>());
                        pid = u32::try_from(cred.pid).ok().filter(|p| *p > 0);
                    }
                    (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                        for i in 0..len / std::mem::size_of::<RawFd>() {
                            let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                            drop(OwnedFd::from_raw_fd(fd));
                        }
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
        if let (Some(pid), false) = (pid, truncated) {
            body.truncate(n as usize);
            return Ok(Some(Received { body, pid }));
        }
    }
}

/// The parent of a process, from `/proc/PID/status`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The pid namespace a process is in (the link's text names it).
pub fn pid_namespace(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_senders_pid_and_descriptors() {
        let (ours, theirs) = pair().unwrap();
        let (r, w) = crate::handshake::pipe().unwrap();
        send(&theirs, b"hello", &[w.as_raw_fd()]).unwrap();
        let got = recv(&ours).unwrap().unwrap();
        assert_eq!(got.body, b"hello");
        assert_eq!(got.pid, std::process::id());
        drop((r, w));
        drop(theirs);
        assert!(recv(&ours).unwrap().is_none());
        assert_eq!(
            parent_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
        assert!(pid_namespace(std::process::id()).is_some());
    }

    #[test]
    fn an_oversized_message_is_skipped_not_buffered() {
        let (ours, theirs) = pair().unwrap();
        send(&theirs, &vec![b'H'; MAX_MESSAGE + 1], &[]).unwrap();
        send(&theirs, b"R", &[]).unwrap();
        let got = recv(&ours).unwrap().unwrap();
        assert_eq!(got.body, b"R", "the cut message was dropped whole");
    }
}
