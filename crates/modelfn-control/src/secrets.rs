//! Access-key secrets at rest, sealed with a key-encryption key (KEK): ChaCha20-Poly1305
//! (RustCrypto) with a random nonce per secret, bound to the key id as associated data,
//! so a sealed secret copied onto another key's row does not open.
//!
//! The KEK comes from `MODELFN_KEK` (64 hex characters, for clusters whose nodes share
//! it) or from `<data dir>/secrets.kek` (mode 0600, made on first start). A database
//! copied without the KEK yields no usable secret. Secrets stored in the clear by earlier
//! releases are sealed at start ([`Sealer::is_sealed`] tells them apart).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

const PREFIX: &str = "sealed:v1:";

/// Seals and opens secrets with one KEK.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Why the KEK cannot be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KekError(String);

impl Sealer {
    pub fn new(kek: [u8; 32]) -> Sealer {
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&kek)),
        }
    }

    /// The KEK from `env` (hex) if given, else from `file`, created (0600) if missing.
    pub fn load(env: Option<&str>, file: &Path) -> Result<Sealer, KekError> {
        let parse = |text: &str, from: &str| -> Result<Sealer, KekError> {
            let bytes = hex::decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    KekError(format!("{from} must hold 64 hex characters (32 bytes)"))
                })?;
            Ok(Sealer::new(bytes))
        };
        if let Some(v) = env {
            return parse(v, "MODELFN_KEK");
        }
        match std::fs::read_to_string(file) {
            Ok(text) => parse(&text, &file.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut kek = [0u8; 32];
                getrandom::fill(&mut kek)
                    .map_err(|e| KekError(format!("no randomness for the KEK: {e}")))?;
                write_private(file, hex::encode(kek).as_bytes())
                    .map_err(|e| KekError(format!("creating {}: {e}", file.display())))?;
                Ok(Sealer::new(kek))
            }
            Err(e) => Err(KekError(format!("reading {}: {e}", file.display()))),
        }
    }

    /// Whether a stored value is sealed (rather than a secret of an earlier release).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Seals `secret` for the key `id`.
    pub fn seal(&self, id: &str, secret: &str) -> Result<String, KekError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| KekError(format!("no randomness: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| KekError("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Opens a sealed secret of key `id`; `None` when it does not open (another KEK, or
    /// tampered with).
    pub fn open(&self, id: &str, stored: &str) -> Option<String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(stored.strip_prefix(PREFIX)?)
            .ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: id.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_to_the_key_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.kek");
        let s = Sealer::load(None, &file).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = s.seal("MFNA", "the secret").unwrap();
        assert!(Sealer::is_sealed(&sealed) && !sealed.contains("the secret"));
        assert_eq!(s.open("MFNA", &sealed).as_deref(), Some("the secret"));
        assert_eq!(s.open("MFNB", &sealed), None, "bound to its key id");
        // The same file gives the same KEK; another KEK opens nothing.
        let again = Sealer::load(None, &file).unwrap();
        assert_eq!(again.open("MFNA", &sealed).as_deref(), Some("the secret"));
        let other = Sealer::load(Some(&"11".repeat(32)), &file).unwrap();
        assert_eq!(other.open("MFNA", &sealed), None);
        assert!(Sealer::load(Some("short"), &file).is_err());
    }
}
