//! A small HTTP client for the CLI commands that talk to a running server.

use anyhow::{bail, Context, Result};
use reqwest::StatusCode;
use serde_json::Value;

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// The message of a `{"error": {"message": ...}}` body, or the body itself.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Client> {
        let http = reqwest::Client::builder()
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: server.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn admin(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        match &self.token {
            Some(t) => Ok(req.bearer_auth(t)),
            None => bail!("no admin token: set MODELFN_TOKEN, pass --token, or run where the server's data directory is (--data-dir)"),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, String)> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the modelfn server at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the server's answer")?;
        Ok((status, text))
    }

    async fn admin_json(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let (status, text) = self.send(self.admin(req)?).await?;
        if !status.is_success() {
            bail!("{} ({status})", error_message(&text));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).context("the server's answer is not JSON")
    }

    pub async fn deploy(&self, archive: Vec<u8>, name: Option<&str>) -> Result<Value> {
        let mut req = self
            .http
            .post(format!("{}/v1/functions", self.base))
            .header("content-type", "application/gzip")
            .body(archive);
        if let Some(n) = name {
            req = req.query(&[("name", n)]);
        }
        self.admin_json(req).await
    }

    pub async fn get_admin(&self, path: &str) -> Result<Value> {
        self.admin_json(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.admin_json(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    pub async fn invoke(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(StatusCode, String)> {
        let req = self
            .http
            .post(format!("{}/v1/functions/{name}/invoke", self.base))
            .header("content-type", content_type)
            .body(body);
        self.send(req).await
    }
}
