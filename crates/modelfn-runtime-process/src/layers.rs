//! Layers merged into one `/opt`, as Lambda extracts them: in manifest order, a later
//! layer's file replacing an earlier one's. The merged tree is built once per set of
//! layers, from hard links (no copy of the bytes), under `<work>/opt/<sha256 of the set>`,
//! in a temporary directory renamed into place so that concurrent starts agree.

use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// The merged directory of `layers` under `root`, built if missing; `None` for no layers.
pub fn merged(root: &Path, layers: &[PathBuf]) -> io::Result<Option<PathBuf>> {
    if layers.is_empty() {
        return Ok(None);
    }
    let mut h = Sha256::new();
    for l in layers {
        h.update(l.as_os_str().as_encoded_bytes());
        h.update([0]);
    }
    let dest = root.join(hex::encode(h.finalize()));
    if dest.is_dir() {
        return Ok(Some(dest));
    }
    std::fs::create_dir_all(root)?;
    let tmp = root.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let built = (|| {
        std::fs::create_dir(&tmp)?;
        set_mode(&tmp, 0o755)?;
        for layer in layers {
            merge_into(layer, &tmp)?;
        }
        Ok::<_, io::Error>(())
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another start built it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(Some(dest))
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

fn merge_into(src: &Path, dest: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !to.is_dir() {
                let _ = std::fs::remove_file(&to);
                std::fs::create_dir(&to)?;
                set_mode(&to, 0o755)?;
            }
            merge_into(&from, &to)?;
        } else if kind.is_symlink() {
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_file() {
            if to.is_dir() {
                std::fs::remove_dir_all(&to)?;
            } else {
                let _ = std::fs::remove_file(&to);
            }
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to)?;
            }
        }
    }
    Ok(())
}

/// Python's import paths inside a merged `/opt`: `/opt/python` and
/// `/opt/python/lib/python3.*/site-packages` (Lambda's two layouts).
pub fn python_paths(merged: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let py = merged.join("python");
    if py.is_dir() {
        out.push("/opt/python".to_string());
    }
    if let Ok(entries) = std::fs::read_dir(py.join("lib")) {
        let mut sites: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("site-packages").is_dir())
            .map(|e| {
                format!(
                    "/opt/python/lib/{}/site-packages",
                    e.file_name().to_string_lossy()
                )
            })
            .collect();
        sites.sort();
        out.extend(sites);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_sets_are_built_once() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir_all(a.join("python/pkg")).unwrap();
        std::fs::create_dir_all(b.join("python/pkg")).unwrap();
        std::fs::create_dir_all(b.join("python/lib/python3.11/site-packages")).unwrap();
        std::fs::write(a.join("python/pkg/x.py"), "a").unwrap();
        std::fs::write(a.join("python/pkg/only_a.py"), "a").unwrap();
        std::fs::write(b.join("python/pkg/x.py"), "b").unwrap();
        let root = d.path().join("opt");
        let m = merged(&root, &[a.clone(), b.clone()]).unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(m.join("python/pkg/x.py")).unwrap(),
            "b"
        );
        assert_eq!(
            std::fs::read_to_string(m.join("python/pkg/only_a.py")).unwrap(),
            "a"
        );
        assert_eq!(merged(&root, &[a, b]).unwrap().unwrap(), m);
        assert_eq!(
            python_paths(&m),
            ["/opt/python", "/opt/python/lib/python3.11/site-packages"]
        );
        assert_eq!(merged(&root, &[]).unwrap(), None);
    }
}
