//! A real PostgreSQL for tests: Debian's `postgresql` server binaries, a fresh cluster
//! made by `initdb` in a temporary directory, listening on a free loopback port (and a
//! socket in that directory), stopped (fast shutdown) when dropped. PostgreSQL refuses to
//! run as root, so under root the cluster belongs to `nobody` and the server runs as it
//! (`setpriv`). Shared by the registry's and the server's tests (`#[path]`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: backends end, the cluster is left clean.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The directory with `initdb` and `postgres`: on the PATH, or Debian's versioned one.
fn bin_dir() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(p) = on_path {
        let p = std::fs::canonicalize(p).unwrap();
        return p.parent().unwrap().to_path_buf();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A command for a PostgreSQL program, as `nobody` when we are root.
fn command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

/// Makes a cluster with the superuser `modelfn` (trusted on loopback) and starts it.
pub fn start() -> Postgres {
    let bin = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let data = dir.path().join("data");
    let out = command(&bin, "initdb")
        .args([
            "-U",
            "modelfn",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "initdb: {out:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = command(&bin, "postgres")
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.path().display()))
        .args(["-c", "fsync=off", "-c", "max_connections=200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pg = Postgres {
        child,
        dir,
        port,
        bin,
    };
    for _ in 0..200 {
        let ready = Command::new(pg.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .unwrap();
        if ready.success() {
            return pg;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("PostgreSQL did not start on port {port}");
}

impl Postgres {
    /// A client program of this server's (`createdb`, `psql`), connected as `modelfn`.
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "modelfn",
        ]);
        c
    }

    /// Makes a database and answers its URL.
    pub fn database(&self, name: &str) -> String {
        let out = self.client("createdb").arg(name).output().unwrap();
        assert!(out.status.success(), "createdb {name}: {out:?}");
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgres://modelfn@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs one SQL statement with `psql` and answers its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The cluster's directory (its socket sits here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
