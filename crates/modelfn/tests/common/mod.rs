//! Starting the real `modelfn` binary for end-to-end tests: on 127.0.0.1, any free port,
//! its own data directory, stopped when the test drops it (or when the test process dies:
//! the server exits when its standard input closes).

#![allow(dead_code)]

pub mod events;
pub mod redis;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_modelfn")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A test function's directory (`crates/modelfn/tests/functions/NAME`).
pub fn test_function(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions")
        .join(name)
}

/// Runs `cmd`, which must succeed; answers its standard output.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_command(data_dir, extra, Command::new(bin()))
    }

    /// A server whose open-file limit (soft and hard) is `nofile`, as under `ulimit -n`.
    /// A server that accepts unsigned AWS-protocol calls (tests about versions or
    /// routing, not signatures), its config file under `dir`.
    pub fn start_unsigned(dir: &Path) -> Server {
        let cfg = dir.join("cfg.toml");
        std::fs::write(&cfg, "aws_allow_unsigned = true\n").unwrap();
        Server::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
    }

    pub fn start_with_nofile(data_dir: &Path, extra: &[&str], nofile: u64) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(bin());
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::start_command(data_dir, extra, cmd)
    }

    /// A server started from `cmd` (with its environment, say).
    pub fn start_command(data_dir: &Path, extra: &[&str], mut cmd: Command) -> Server {
        let mut child = cmd
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--exit-with-stdin",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start modelfn");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("modelfn printed nothing").unwrap();
        let url = first
            .strip_prefix("modelfn listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Runs a CLI command against this server; answers (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(bin())
            .args(args)
            .env("MODELFN_SERVER", &self.url)
            .env("MODELFN_DATA_DIR", &self.data_dir)
            .env_remove("MODELFN_TOKEN")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn deploy(&self, dir: &Path) {
        let (ok, out, err) = self.cli(&["deploy", dir.to_str().unwrap()]);
        assert!(ok, "deploy {} failed: {out} {err}", dir.display());
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl (a client no one here wrote): answers (HTTP status, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Copies a directory (one level of files and subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            copy_dir(&p, &to.join(p.file_name().unwrap()));
        } else {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// POSTs a JSON event with curl; answers (status, lower-cased headers, body).
pub fn invoke(url: &str, event: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "60",
            "-D",
            "-",
            "-X",
            "POST",
            url,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            event,
        ])
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_lowercase(), body.to_string())
}

/// Invokes `name` with a JSON event on the native door and asserts a 200 without a
/// function error; answers the lower-cased headers and the JSON body.
pub fn call(s: &Server, name: &str, event: serde_json::Value) -> (String, serde_json::Value) {
    let (code, headers, body) = invoke(
        &format!("{}/v1/functions/{name}/invoke", s.url),
        &event.to_string(),
    );
    assert_eq!(code, 200, "{name}: {body}");
    assert_eq!(
        header(&headers, "x-modelfn-function-error"),
        None,
        "{name}: {body}"
    );
    (headers, json(&body))
}

/// The value of a header in lower-cased headers text.
pub fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// A Python with the real clients of `tests/clients/requirements.txt` (boto3...), in a
/// virtual environment made once under `target/test-venv`.
pub fn client_python() -> PathBuf {
    static READY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|p| p.into_inner());
    let venv = repo().join("target/test-venv");
    let python = venv.join("bin/python");
    let req = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/requirements.txt");
    let stamp = venv.join("installed.txt");
    let want = std::fs::read_to_string(&req).unwrap();
    if !*ready && std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python3 -m venv failed");
        let ok = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&req)
            .status()
            .unwrap()
            .success();
        assert!(ok, "pip install of the test clients failed");
        std::fs::write(&stamp, &want).unwrap();
    }
    *ready = true;
    python
}

/// Runs a client script of `tests/clients/` with the clients' Python; answers whether it
/// succeeded and everything it printed.
pub fn run_client(script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(client_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/clients")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Host pids of a function's instance processes under `server` (those whose environment
/// names the function and whose parent is the sandbox's pid 1: bubblewrap's, or the
/// snap-start template that forked them), found through the host's `/proc`. Only the
/// server's own descendants count: tests run side by side, and another test's server
/// may run a function of the same name.
pub fn function_pids(server: &Server, function: &str) -> Vec<u32> {
    let needle = format!("AWS_LAMBDA_FUNCTION_NAME={function}\0");
    let status =
        |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().last().unwrap_or("").to_string())
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let st = status(&name);
        let parent = field(&st, "PPid:").unwrap_or_default();
        // A snap-start child prepared ahead is not an instance yet.
        let is_function = field(&st, "NSpid:").is_some_and(|p| p != "1")
            && field(&status(&parent), "NSpid:").as_deref() == Some("1")
            && field(&st, "Name:").as_deref() != Some("modelfn-spare");
        if is_function
            && env.windows(needle.len()).any(|w| w == needle.as_bytes())
            && descends_from(pid, server.child.id())
        {
            out.push(pid);
        }
    }
    out
}

/// Whether `ancestor` is among `pid`'s parents (followed through `/proc`, at most 32 up).
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut at = pid;
    for _ in 0..32 {
        let status = std::fs::read_to_string(format!("/proc/{at}/status")).unwrap_or_default();
        let Some(parent) = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            return false;
        };
        if parent == ancestor {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        at = parent;
    }
    false
}

/// Peak resident memory of a process (`VmHWM`), in KiB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Rewrites the package's manifest with `description = "TEXT"`: deployed, a new version.
pub fn set_description(pkg: &Path, text: &str) {
    let manifest = std::fs::read_to_string(pkg.join("modelfn.toml")).unwrap();
    let body: String = manifest
        .lines()
        .filter(|l| !l.starts_with("description = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        pkg.join("modelfn.toml"),
        format!("description = \"{text}\"\n{body}"),
    )
    .unwrap();
}

/// A keep-alive HTTP/1.1 client on one connection, each request one write sent at once
/// (no Nagle wait on the delayed ACK).
pub struct KeepAlive {
    reader: BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl KeepAlive {
    pub fn connect(addr: &str) -> KeepAlive {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        KeepAlive {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// POSTs a JSON body to `path` with extra `headers` (each ending in CRLF); answers
    /// the status, the `x-modelfn-version` header ("" when absent) and the body.
    pub fn post(&mut self, path: &str, headers: &str, body: &str) -> (u16, String, String) {
        use std::io::{Read, Write};
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes()).unwrap();
        let (mut len, mut version, mut status) = (0usize, String::new(), 0u16);
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length: ") {
                len = v.parse().unwrap();
            } else if let Some(v) = lower.strip_prefix("x-modelfn-version: ") {
                version = v.to_string();
            } else if let Some(rest) = lower.strip_prefix("http/1.1 ") {
                status = rest.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf).unwrap();
        (status, version, String::from_utf8_lossy(&buf).into_owned())
    }
}
