//! Function packages: a gzip-compressed tar of the function directory, with
//! `modelfn.toml` at its root. Unpacking refuses anything that could escape the target
//! directory (absolute paths, `..`, links, devices) and enforces the size limits.

use crate::tar_guard::TarGuard;
use crate::RegistryError;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Component, Path};

/// Size limits for packages, as on Lambda (50 MB compressed, 250 MB unpacked).
#[derive(Debug, Clone, Copy)]
pub struct PackageLimits {
    pub max_compressed_bytes: u64,
    pub max_unpacked_bytes: u64,
}

impl Default for PackageLimits {
    fn default() -> Self {
        PackageLimits {
            max_compressed_bytes: 50 * 1024 * 1024,
            max_unpacked_bytes: 250 * 1024 * 1024,
        }
    }
}

/// What unpacking found.
#[derive(Debug, Clone)]
pub struct UnpackedPackage {
    pub files: usize,
    pub unpacked_bytes: u64,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::InvalidPackage(msg.into())
}

/// Megabytes with one decimal, for messages.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// Checks the compressed size against the limit.
pub fn check_compressed(len: u64, limits: &PackageLimits) -> Result<(), RegistryError> {
    if len > limits.max_compressed_bytes {
        return Err(RegistryError::TooLarge(format!(
            "the package is {} compressed; the limit is {}",
            mb(len),
            mb(limits.max_compressed_bytes)
        )));
    }
    Ok(())
}

/// Most files and directories in one package (Lambda's limits are in bytes; this bounds
/// inodes, which bytes alone do not).
pub const MAX_ENTRIES: u64 = 100_000;

/// Unpacks `archive` (tar.gz) into `dest`, which must exist and be empty.
pub fn unpack(
    archive: &[u8],
    dest: &Path,
    limits: &PackageLimits,
) -> Result<UnpackedPackage, RegistryError> {
    check_compressed(archive.len() as u64, limits)?;
    if archive.len() < 2 || archive[0] != 0x1f || archive[1] != 0x8b {
        return Err(invalid(
            "the package is not a gzip-compressed tar archive (make one with `tar -czf fn.tar.gz -C DIR .`, or use `modelfn deploy DIR`)",
        ));
    }
    let guard = TarGuard::new(GzDecoder::new(archive));
    let refused = guard.refused.clone();
    let mut tar = tar::Archive::new(guard);
    let mut total: u64 = 0;
    let mut files = 0;
    let corrupt = |e: std::io::Error, what: &str| match refused.borrow().clone() {
        Some(why) => invalid(format!("the package is refused: {why}")),
        None => invalid(format!("{what}: {e}")),
    };
    let entries = tar
        .entries()
        .map_err(|e| corrupt(e, "the package cannot be read"))?;
    let mut count: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e, "the package is corrupt"))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(invalid(format!(
                "the package has more than {MAX_ENTRIES} files and directories"
            )));
        }
        let path = entry
            .path()
            .map_err(|e| invalid(format!("a file name in the package is unreadable: {e}")))?
            .into_owned();
        let shown = path.display().to_string();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(invalid(format!(
                "the package path {shown:?} leaves the package (absolute or '..')"
            )));
        }
        // A name the filesystem refuses (too long, say) is the package's fault; a full
        // disk is the server's.
        let written = |e: std::io::Error| {
            // ENOSPC, EDQUOT
            if matches!(e.raw_os_error(), Some(28) | Some(122)) {
                RegistryError::Storage(format!("the server's disk is full while unpacking: {e}"))
            } else {
                invalid(format!(
                    "the package entry {shown:?} cannot be written: {e}"
                ))
            }
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&path)).map_err(written)?;
            set_mode(&dest.join(&path), 0o755)?;
            continue;
        }
        if !kind.is_file() && !kind.is_gnu_sparse() {
            return Err(invalid(format!(
                "the package entry {shown:?} is a link or special file; packages hold only files and directories"
            )));
        }
        // The size of the file itself (for a sparse entry, more than is stored).
        let size = entry.size();
        total = total.saturating_add(size);
        if total > limits.max_unpacked_bytes {
            return Err(RegistryError::TooLarge(format!(
                "the package unpacks to more than {} (the limit); {shown:?} brought it over",
                mb(limits.max_unpacked_bytes)
            )));
        }
        let target = dest.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(written)?;
        }
        let mut out = std::fs::File::create(&target).map_err(written)?;
        // Copy at most the declared size: a lying header cannot overrun the limit.
        let copied = std::io::copy(&mut (&mut entry).take(size), &mut out).map_err(|e| {
            if matches!(e.raw_os_error(), Some(28) | Some(122)) {
                RegistryError::Storage(format!("the server's disk is full while unpacking: {e}"))
            } else {
                corrupt(e, &format!("the package is corrupt at {shown:?}"))
            }
        })?;
        if copied != size {
            return Err(invalid(format!("the package is truncated at {shown:?}")));
        }
        // Keep the executable bit (a `bootstrap`, a layer's bin/), nothing else: code is
        // readable by the unprivileged function user and writable by no one but modelfn.
        let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
        set_mode(&target, if exec { 0o755 } else { 0o644 })?;
        files += 1;
    }
    Ok(UnpackedPackage {
        files,
        unpacked_bytes: total,
    })
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Packs a directory into tar.gz (what `modelfn deploy DIR` uploads). Skips `.git`,
/// `__pycache__` and `target` directories.
pub fn pack_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(enc);
    builder.follow_symlinks(true);
    // Plain entries only: a sparse entry (a linker's output often has holes) is refused by
    // unpackers that, like ours, accept only regular files.
    builder.sparse(false);
    // No times, owners or umask in the archive: the same files make the same package (and
    // digest) whenever they were written, so a deploy or layer that changes nothing is
    // recognised as unchanged. Executables stay executable (0755), the rest is 0644.
    builder.mode(tar::HeaderMode::Deterministic);
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                if !matches!(name, ".git" | "__pycache__" | "target") {
                    stack.push(p);
                }
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        builder.append_path_with_name(&f, rel)?;
    }
    builder.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(if name.ends_with("bootstrap") {
                0o700
            } else {
                0o600
            });
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses '..'; write the raw name to test the unpacker's own check.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn the_same_files_pack_the_same_whenever_they_were_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"same").unwrap();
        std::fs::write(dir.path().join("bootstrap"), b"#!/bin/sh").unwrap();
        std::fs::set_permissions(
            dir.path().join("bootstrap"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let first = pack_dir(dir.path()).unwrap();
        // Rewritten later (another mtime), same content.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.path().join("a.txt"), b"same").unwrap();
        assert_eq!(pack_dir(dir.path()).unwrap(), first);
        let out = tempfile::tempdir().unwrap();
        unpack(&first, out.path(), &PackageLimits::default()).unwrap();
        let mode = std::fs::metadata(out.path().join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0, "executables stay executable");
    }

    #[test]
    fn unpacks_files_and_counts_size() {
        let dir = tempfile::tempdir().unwrap();
        let a = targz(&[("modelfn.toml", b"x"), ("sub/model.onnx", b"12345")]);
        let u = unpack(&a, dir.path(), &PackageLimits::default()).unwrap();
        assert_eq!((u.files, u.unpacked_bytes), (2, 6));
        assert_eq!(
            std::fs::read(dir.path().join("sub/model.onnx")).unwrap(),
            b"12345"
        );
    }

    /// A gzip stream of one GNU long-name header of `len` bytes, then a file.
    fn long_name_bomb(len: u64) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        h.set_size(len);
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_cksum();
        enc.write_all(h.as_bytes()).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            enc.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        enc.write_all(&vec![0u8; (512 - (len % 512) as usize) % 512 + 1024])
            .unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn extension_headers_are_bounded_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let bomb = long_name_bomb(64 << 20);
        assert!(bomb.len() < 1 << 20, "{} bytes compressed", bomb.len());
        let e = unpack(&bomb, dir.path(), &PackageLimits::default()).unwrap_err();
        assert!(
            matches!(&e, RegistryError::InvalidPackage(m) if m.contains("extension header (type 'L') of 67108864 bytes")),
            "{e}"
        );
        // Long names within bounds, and PAX records, still unpack.
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        let long = format!("{}/model.onnx", "d".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        b.append_pax_extensions([("comment", "x".repeat(1000).as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "after-pax", &b"ok"[..]).unwrap();
        let a = b.into_inner().unwrap().finish().unwrap();
        let u = unpack(&a, dir.path(), &PackageLimits::default()).unwrap();
        assert_eq!(u.files, 2);
        assert_eq!(std::fs::read(dir.path().join(&long)).unwrap(), b"abc");
        assert_eq!(std::fs::read(dir.path().join("after-pax")).unwrap(), b"ok");
    }

    #[test]
    fn names_the_filesystem_refuses_are_the_packages_fault() {
        let dir = tempfile::tempdir().unwrap();
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "x".repeat(300), &b"1"[..]).unwrap();
        let a = b.into_inner().unwrap().finish().unwrap();
        let e = unpack(&a, dir.path(), &PackageLimits::default()).unwrap_err();
        assert!(
            matches!(&e, RegistryError::InvalidPackage(m) if m.contains("cannot be written")),
            "{e}"
        );
    }

    #[test]
    fn refuses_escapes_garbage_and_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let lim = PackageLimits::default();
        let e = unpack(&targz(&[("../evil", b"x")]), dir.path(), &lim).unwrap_err();
        assert!(e.to_string().contains("leaves the package"), "{e}");
        let e = unpack(&targz(&[("/etc/evil", b"x")]), dir.path(), &lim).unwrap_err();
        assert!(e.to_string().contains("leaves the package"), "{e}");
        let e = unpack(b"PK\x03\x04 zip", dir.path(), &lim).unwrap_err();
        assert!(e.to_string().contains("not a gzip-compressed tar"), "{e}");
        let small = PackageLimits {
            max_compressed_bytes: 1 << 20,
            max_unpacked_bytes: 3,
        };
        let e = unpack(&targz(&[("big", b"12345")]), dir.path(), &small).unwrap_err();
        assert!(matches!(e, RegistryError::TooLarge(_)), "{e}");
        let tiny = PackageLimits {
            max_compressed_bytes: 10,
            max_unpacked_bytes: 1 << 20,
        };
        let e = unpack(&targz(&[("a", b"1")]), dir.path(), &tiny).unwrap_err();
        assert!(e.to_string().contains("compressed; the limit is"), "{e}");
    }
}
