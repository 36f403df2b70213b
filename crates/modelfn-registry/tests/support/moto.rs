//! A real S3-protocol server for tests: moto's server mode (`moto[server]`, pinned in
//! `crates/modelfn-registry/tests/s3-requirements.txt`), installed once into a virtual
//! environment under `target/s3-venv`, listening on a free loopback port and killed when
//! dropped. Shared by the registry's and the server's tests (`#[path]`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace root (every crate sits at `crates/<name>`).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Makes the virtual environment if its requirements changed; answers its `bin`.
fn venv_bin() -> PathBuf {
    static READY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = READY.lock().unwrap_or_else(|p| p.into_inner());
    let venv = root().join("target/s3-venv");
    let req = root().join("crates/modelfn-registry/tests/s3-requirements.txt");
    let want = std::fs::read_to_string(&req).unwrap();
    let stamp = venv.join("installed.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        assert!(ok.unwrap().success(), "python3 -m venv failed");
        let ok = Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&req)
            .status();
        assert!(ok.unwrap().success(), "pip install of moto failed");
        std::fs::write(&stamp, &want).unwrap();
    }
    venv.join("bin")
}

/// Starts moto and waits until it accepts connections.
pub fn start() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(venv_bin().join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return moto;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("moto did not start on port {port}");
}

/// The keys in `bucket` (moto answers a listing without a signature), and the listing.
pub fn keys(moto: &Moto, bucket: &str) -> (Vec<String>, String) {
    let out = Command::new("curl")
        .args(["-fsS", &format!("{}/{bucket}?list-type=2", moto.endpoint)])
        .output()
        .unwrap();
    assert!(out.status.success(), "listing {bucket}: {out:?}");
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let keys = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(str::to_string)
        .collect();
    (keys, listing)
}

/// Makes `bucket` (unsigned, as moto allows).
pub fn make_bucket(moto: &Moto, bucket: &str) {
    let out = Command::new("curl")
        .args(["-fsS", "-X", "PUT", &format!("{}/{bucket}", moto.endpoint)])
        .output()
        .unwrap();
    assert!(out.status.success(), "making {bucket}: {out:?}");
}
