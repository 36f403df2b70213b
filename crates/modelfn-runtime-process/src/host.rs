//! Looking at the host: programs on `PATH`, whether others may run them, and where an
//! interpreter is installed.

use std::path::{Path, PathBuf};

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a file can be run by users other than its owner (every directory above it
/// traversable, the file executable by others).
pub fn usable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(real) = path.canonicalize() else {
        return false;
    };
    let file_ok = std::fs::metadata(&real).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    file_ok
        && real
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Finds a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| is_executable(p))
}

/// The installation an interpreter outside `/usr` lives in (`<prefix>/bin/python3` →
/// `<prefix>`), which the sandbox must mount for it to run.
pub fn install_prefix(interpreter: &Path) -> Option<PathBuf> {
    let real = interpreter.canonicalize().ok()?;
    if real.starts_with("/usr") || real.starts_with("/bin") {
        return None;
    }
    real.parent()?.parent().map(Path::to_path_buf)
}
