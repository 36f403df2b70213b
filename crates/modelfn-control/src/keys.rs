//! Access keys: an id and a secret for SigV4 (the AWS protocols), and a separate API key
//! for `x-api-key` (API stages and function URLs), so a leaked one is not the other.
//! Secrets are sealed at rest ([`crate::secrets`]); API keys are kept only as SHA-256.
//!
//! Each function has a key of its own, `function:NAME`, which may only invoke what the
//! function's `[permissions]` grant; the shared key of earlier releases is revoked.

use crate::secrets::Sealer;
use crate::{random_text, ControlError, ControlPlane};
use modelfn_core::{Manifest, Permissions};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Functions' own access keys are named `function:NAME`.
pub const FUNCTION_KEY_PREFIX: &str = "function:";

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An access key as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub name: String,
    pub created_at_ms: i64,
    /// May change what serves through the AWS management calls (provisioned
    /// concurrency, SageMaker endpoint weights), not only invoke and read.
    #[serde(default)]
    pub manage: bool,
    /// The SigV4 secret: shown once, when the key is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// The `x-api-key` value: shown once, when the key is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

impl ControlPlane {
    /// Creates an access key; its secret and API key are in the answer, never again.
    pub async fn create_key(&self, name: &str, manage: bool) -> Result<AccessKey, ControlError> {
        if name.trim().is_empty() || name.len() > 128 {
            return Err(ControlError::InvalidRequest(
                "a key needs a name of 1 to 128 characters".into(),
            ));
        }
        if name.starts_with(FUNCTION_KEY_PREFIX) {
            return Err(ControlError::InvalidRequest(format!(
                "key names starting with {FUNCTION_KEY_PREFIX:?} are the functions' own"
            )));
        }
        self.new_key(name, true, manage).await
    }

    async fn new_key(
        &self,
        name: &str,
        with_api_key: bool,
        manage: bool,
    ) -> Result<AccessKey, ControlError> {
        let id = format!(
            "MFN{}",
            random_text(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 17)?
        );
        let secret = random_text(ALNUM, 40)?;
        let api_key = if with_api_key {
            Some(format!("mfk_{}", random_text(ALNUM, 40)?))
        } else {
            None
        };
        let sealed = self.sealer().seal(&id, &secret).map_err(storage)?;
        let api_hash = api_key.as_deref().map(sha256_hex).unwrap_or_default();
        self.meta
            .put_access_key(&id, name, &sealed, &api_hash, manage)
            .await?;
        Ok(AccessKey {
            access_key_id: id,
            name: name.to_string(),
            created_at_ms: modelfn_registry::now_ms(),
            manage,
            secret_access_key: Some(secret),
            api_key,
        })
    }

    pub async fn list_keys(&self) -> Result<Vec<AccessKey>, ControlError> {
        Ok(self
            .meta
            .list_access_keys()
            .await?
            .into_iter()
            .map(|k| AccessKey {
                access_key_id: k.id,
                name: k.name,
                created_at_ms: k.created_at_ms,
                manage: k.manage,
                secret_access_key: None,
                api_key: None,
            })
            .collect())
    }

    pub async fn delete_key(&self, id: &str) -> Result<(), ControlError> {
        let existed = self.meta.delete_access_key(id).await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "access key '{id}' does not exist"
            )))
        }
    }

    /// A function's own access key (created with its first deploy, named
    /// `function:NAME`): answers (id, secret). Requests signed with it may do only what
    /// the function's `[permissions]` grant.
    pub async fn function_key(&self, function: &str) -> Result<(String, String), ControlError> {
        let name = format!("{FUNCTION_KEY_PREFIX}{function}");
        if let Some(key) = self
            .meta
            .list_access_keys()
            .await?
            .into_iter()
            .find(|k| k.name == name)
        {
            // A key that exists but does not unseal means this node has another KEK than
            // the one that sealed it: an error, never a second key for the function.
            return match self.key_secret(&key.id).await? {
                Some(secret) => Ok((key.id, secret)),
                None => Err(ControlError::Storage(format!(
                    "the access key {} of function '{function}' does not unseal with this node's key-encryption key: every node of a cluster needs the same MODELFN_KEK",
                    key.id
                ))),
            };
        }
        let key = self.new_key(&name, false, false).await?;
        Ok((key.access_key_id, key.secret_access_key.unwrap_or_default()))
    }

    /// Deletes the keys named `name`.
    pub(crate) async fn delete_keys_named(&self, name: &str) -> Result<(), ControlError> {
        for key in self.meta.list_access_keys().await? {
            if key.name == name {
                self.meta.delete_access_key(&key.id).await?;
            }
        }
        // Drops the deleted keys from this node's cache now, not at the next pass.
        self.forget_api_keys();
        Ok(())
    }

    /// At start: revokes the key every function shared in earlier releases, and seals
    /// secrets stored in the clear. Answers how many secrets were sealed.
    pub async fn secure_keys(&self) -> Result<usize, ControlError> {
        self.delete_keys_named("modelfn-functions").await?;
        let mut sealed = 0;
        for key in self.meta.list_access_keys().await? {
            let id = key.id;
            let Some(stored) = self.meta.access_key_secret(&id).await? else {
                continue;
            };
            if !Sealer::is_sealed(&stored) {
                let s = self.sealer().seal(&id, &stored).map_err(storage)?;
                self.meta.update_access_key_secret(&id, &s).await?;
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Whether key `id` may change what serves through the AWS management calls.
    pub async fn key_may_manage(&self, id: &str) -> Result<bool, ControlError> {
        Ok(self
            .meta
            .list_access_keys()
            .await?
            .into_iter()
            .any(|k| k.id == id && k.manage && !k.name.starts_with(FUNCTION_KEY_PREFIX)))
    }

    /// Whose key `id` is: `Some(function)` for a function's own key.
    pub async fn key_function(&self, id: &str) -> Result<Option<String>, ControlError> {
        Ok(self
            .meta
            .list_access_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .and_then(|k| k.name.strip_prefix(FUNCTION_KEY_PREFIX).map(str::to_string)))
    }

    /// A function's grants, from its serving version's manifest (none if it is gone).
    pub async fn permissions(&self, function: &str) -> Result<Permissions, ControlError> {
        let Some(rec) = self.meta.get(function).await? else {
            return Ok(Permissions::default());
        };
        Ok(Manifest::from_toml(&rec.manifest)
            .map(|m| m.permissions)
            .unwrap_or_default())
    }

    /// The key an `x-api-key` value belongs to, if any.
    pub async fn api_key_owner(&self, presented: &str) -> Result<Option<String>, ControlError> {
        if presented.is_empty() {
            return Ok(None);
        }
        let hash = sha256_hex(presented);
        if let Some(id) = self.api_keys_seen().get(&hash) {
            return Ok(Some(id.clone()));
        }
        let owner = self.meta.access_key_by_secret_hash(&hash).await?;
        if let Some(id) = &owner {
            self.remember_api_key(hash, id.clone());
        }
        Ok(owner)
    }

    /// The secret of an access key, to verify a signature (`None`: no such key, or its
    /// secret does not open with this server's KEK).
    pub async fn key_secret(&self, id: &str) -> Result<Option<String>, ControlError> {
        let Some(stored) = self.meta.access_key_secret(id).await? else {
            return Ok(None);
        };
        let secret = self.sealer().open(id, &stored);
        if secret.is_none() {
            tracing::error!(
                key = id,
                "an access key's secret does not unseal with this node's key-encryption key (every node of a cluster needs the same MODELFN_KEK)"
            );
        }
        Ok(secret)
    }
}

fn storage(e: crate::secrets::KekError) -> ControlError {
    ControlError::Storage(e.to_string())
}
