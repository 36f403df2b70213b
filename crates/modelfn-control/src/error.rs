//! Why a control-plane operation failed, and whose fault it is.

use modelfn_registry::RegistryError;

/// Why a control-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The package is unusable: not an archive, a path escapes, no manifest.
    #[error("{0}")]
    InvalidPackage(String),
    /// The manifest is wrong.
    #[error("{0}")]
    InvalidManifest(String),
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The function does not start (a model that does not load, or disagrees with its manifest).
    #[error("the function does not start: {0}")]
    InitFailed(String),
    /// No such function.
    #[error("function '{0}' does not exist")]
    NotFound(String),
    /// No such layer (version), or no such saved event.
    #[error("{0}")]
    Missing(String),
    /// A request whose values do not fit together.
    #[error("{0}")]
    InvalidRequest(String),
    /// The platform failed (database, disk).
    #[error("{0}")]
    Storage(String),
    /// The platform is overloaded (no database connection came free in time): retry.
    #[error("{0}")]
    Busy(String),
}

impl From<RegistryError> for ControlError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::InvalidPackage(m) => ControlError::InvalidPackage(m),
            RegistryError::TooLarge(m) => ControlError::TooLarge(m),
            RegistryError::Conflict(m) => ControlError::InvalidRequest(m),
            RegistryError::Storage(m) => ControlError::Storage(m),
            RegistryError::Busy(m) => ControlError::Busy(m),
        }
    }
}
