//! Listening sockets inside a sandbox's network namespace.
//!
//! A sandbox's network namespace has only its own loopback, so its Runtime API and its
//! `AWS_ENDPOINT_URL` must listen *inside* it, where no other process on the machine can
//! connect. A socket belongs to the namespace it was created in, wherever it is used
//! afterwards: a short-lived forked helper joins the user namespace that owns the
//! sandbox's network namespace (when it is not ours) and the network namespace, creates and binds the sockets, and hands their
//! descriptors back over a socket pair (`SCM_RIGHTS`). modelfn then serves them from its
//! own threads. Between fork and `_exit` the helper makes only async-signal-safe calls.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A libc result, or the OS error it stands for.
pub(crate) fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_ns(pid: u32, kind: &str) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/ns/{kind}"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid C string; the descriptor is owned by the returned value.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `NS_GET_USERNS` (linux/nsfs.h): a namespace's owning user namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The user namespace that owns the network namespace `net`: the one to join to have
/// the right to enter it. Not the process's own user namespace, which bubblewrap may
/// have replaced by a nested one (to set the final uid map) by the time it is looked at;
/// joining that one gives no right over the network namespace (`EPERM`).
fn owner_of(net: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: an ioctl on a namespace descriptor we own; it answers a new descriptor.
    let fd = check(unsafe { libc::ioctl(net.as_raw_fd(), NS_GET_USERNS as _) })?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sets close-on-exec on the descriptor we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(fd)
}

/// The most ports one call binds.
const MAX_PORTS: usize = 4;

/// Binds `0.0.0.0:<port>` for each port inside the network namespace of process `pid`
/// (the namespace has only loopback, so this is reachable from inside it alone).
pub fn listen_in(pid: u32, ports: &[u16]) -> io::Result<Vec<TcpListener>> {
    if ports.is_empty() || ports.len() > MAX_PORTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "between 1 and 4 ports",
        ));
    }
    let net = open_ns(pid, "net")?;
    let user = owner_of(&net).or_else(|_| open_ns(pid, "user"))?;
    let mut pair = [0 as RawFd; 2];
    // SAFETY: `pair` has room for the two descriptors.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned here.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let addrs: Vec<libc::sockaddr_in> = ports
        .iter()
        .map(|p| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: p.to_be(),
            sin_addr: libc::in_addr { s_addr: 0 },
            sin_zero: [0; 8],
        })
        .collect();
    // SAFETY: fork in a multi-threaded process; the child below only makes
    // async-signal-safe system calls on memory prepared before the fork, then `_exit`s.
    let child = check(unsafe { libc::fork() })?;
    if child == 0 {
        // SAFETY: see above; every pointer refers to memory owned by this stack frame.
        unsafe {
            helper(
                user.as_raw_fd(),
                net.as_raw_fd(),
                theirs.as_raw_fd(),
                &addrs,
            )
        }
    }
    drop(theirs);
    let received = receive(ours.as_raw_fd(), ports.len());
    let mut status = 0;
    // SAFETY: the helper forked above: killed if it sent nothing (it may be stuck), then
    // waited for.
    unsafe {
        if received.is_err() {
            libc::kill(child, libc::SIGKILL);
        }
        libc::waitpid(child, &mut status, 0);
    }
    let fds = received.map_err(|e| io::Error::other(format!("{e}: {}", helper_status(status))))?;
    if fds.len() != ports.len() {
        return Err(io::Error::other(format!(
            "could not open the sandbox's sockets (helper status {status})"
        )));
    }
    Ok(fds
        .into_iter()
        // SAFETY: each descriptor arrived by SCM_RIGHTS and is owned by nobody else.
        .map(|fd| unsafe { TcpListener::from_raw_fd(fd) })
        .collect())
}

/// What the helper's wait status says went wrong.
fn helper_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        return format!("the helper was killed by signal {}", libc::WTERMSIG(status));
    }
    match libc::WEXITSTATUS(status) {
        2 => "the helper could not join the sandbox's network namespace".into(),
        3 => "the helper could not create a socket".into(),
        4 => "the helper could not bind or listen".into(),
        5 => "the helper could not send the sockets".into(),
        n => format!("the helper exited with {n}"),
    }
}

/// The forked helper: joins the namespaces, binds, sends the sockets, exits.
unsafe fn helper(user: RawFd, net: RawFd, out: RawFd, addrs: &[libc::sockaddr_in]) -> ! {
    // SAFETY: the caller is the forked child; only async-signal-safe calls follow, on
    // memory owned by this frame or prepared before the fork.
    unsafe {
        // Joining the user namespace fails (harmlessly) when it is already ours: a sandbox
        // started by root has none of its own.
        libc::setns(user, libc::CLONE_NEWUSER);
        if libc::setns(net, libc::CLONE_NEWNET) != 0 {
            libc::_exit(2);
        }
        let mut fds = [-1 as RawFd; MAX_PORTS];
        for (i, addr) in addrs.iter().enumerate() {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                libc::_exit(3);
            }
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            if libc::bind(
                fd,
                (addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ) != 0
                || libc::listen(fd, 1024) != 0
            {
                libc::_exit(4);
            }
            fds[i] = fd;
        }
        let n = addrs.len();
        let mut cmsg_buf = [0u64; 8];
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        let payload = (n * std::mem::size_of::<RawFd>()) as u32;
        msg.msg_controllen = libc::CMSG_SPACE(payload) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), n);
        if libc::sendmsg(out, &msg, 0) < 0 {
            libc::_exit(5);
        }
        libc::_exit(0)
    }
}

/// Receives up to `n` descriptors (waiting at most 5 s).
fn receive(fd: RawFd, n: usize) -> io::Result<Vec<RawFd>> {
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: sets a receive timeout on a socket we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut cmsg_buf = [0u64; 8];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg_buf) as _;
    // SAFETY: receives into the buffers above.
    let r = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if r <= 0 {
        return Err(io::Error::other("the sandbox's socket helper sent nothing"));
    }
    let mut out = Vec::new();
    // SAFETY: walks the control messages the kernel wrote into `cmsg_buf`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..(bytes / std::mem::size_of::<RawFd>()).min(n) {
                    out.push(std::ptr::read_unaligned(data.add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(out)
}
