//! A function's saved test events.

use crate::{ControlError, ControlPlane};
use modelfn_core::FunctionName;

impl ControlPlane {
    /// Saves a named test event for a function.
    pub async fn save_event(
        &self,
        function: &str,
        name: &FunctionName,
        body: &[u8],
    ) -> Result<(), ControlError> {
        self.describe(function).await?;
        Ok(self.meta.put_event(function, name.as_str(), body).await?)
    }

    pub async fn event(&self, function: &str, name: &str) -> Result<Vec<u8>, ControlError> {
        self.describe(function).await?;
        self.meta.get_event(function, name).await?.ok_or_else(|| {
            ControlError::Missing(format!("function '{function}' has no saved event '{name}'"))
        })
    }

    pub async fn list_events(&self, function: &str) -> Result<Vec<String>, ControlError> {
        self.describe(function).await?;
        Ok(self.meta.list_events(function).await?)
    }
}
