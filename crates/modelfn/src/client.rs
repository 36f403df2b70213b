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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn admin(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        match &self.token {
            Some(t) => Ok(req.bearer_auth(t)),
            None => bail!("no admin token: set MODELFN_TOKEN, pass --token, or run where the server's data directory is (--data-dir)"),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, bool, Vec<u8>)> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the modelfn server at {}", self.base))?;
        let status = resp.status();
        let function_error = resp.headers().contains_key("x-modelfn-function-error");
        let body = resp.bytes().await.context("reading the server's answer")?;
        Ok((status, function_error, body.to_vec()))
    }

    /// An admin request whose answer must succeed; answers the raw body.
    async fn admin_bytes(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let (status, _, body) = self.send(self.admin(req)?).await?;
        if !status.is_success() {
            bail!(
                "{} ({status})",
                error_message(&String::from_utf8_lossy(&body))
            );
        }
        Ok(body)
    }

    async fn admin_json(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let body = self.admin_bytes(req).await?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).context("the server's answer is not JSON")
    }

    pub async fn deploy(
        &self,
        archive: Vec<u8>,
        name: Option<&str>,
        validate: bool,
        label: &str,
    ) -> Result<Value> {
        let mut req = self
            .http
            .post(self.url("/v1/functions"))
            .header("content-type", "application/gzip")
            .body(crate::progress::upload(archive, label));
        if let Some(n) = name {
            req = req.query(&[("name", n)]);
        }
        if !validate {
            req = req.query(&[("validate", "false")]);
        }
        self.admin_json(req).await
    }

    pub async fn get_admin(&self, path: &str) -> Result<Value> {
        self.admin_json(self.http.get(self.url(path))).await
    }

    pub async fn get_admin_query(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.admin_json(self.http.get(self.url(path)).query(query))
            .await
    }

    /// A raw admin GET (a saved event).
    pub async fn get_admin_bytes(&self, path: &str) -> Result<Vec<u8>> {
        self.admin_bytes(self.http.get(self.url(path))).await
    }

    pub async fn post_admin_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value> {
        let req = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        self.admin_json(req).await
    }

    pub async fn post_admin(&self, path: &str, body: Vec<u8>) -> Result<Value> {
        let req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.admin_json(req).await
    }

    pub async fn put_admin(&self, path: &str, body: Vec<u8>) -> Result<Value> {
        let req = self
            .http
            .put(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.admin_json(req).await
    }

    /// A PUT of a raw file (a model, an object), its progress shown as `label`.
    pub async fn put_admin_raw(&self, path: &str, body: Vec<u8>, label: &str) -> Result<Value> {
        let req = self
            .http
            .put(self.url(path))
            .header("content-type", "application/octet-stream")
            .body(crate::progress::upload(body, label));
        self.admin_json(req).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.admin_json(self.http.delete(self.url(path))).await
    }

    pub async fn publish_layer(
        &self,
        name: &str,
        archive: Vec<u8>,
        description: &str,
    ) -> Result<Value> {
        let req = self
            .http
            .post(self.url(&format!("/v1/layers/{name}")))
            .query(&[("description", description)])
            .header("content-type", "application/gzip")
            .body(crate::progress::upload(archive, &format!("layer {name}")));
        self.admin_json(req).await
    }

    /// Invokes; answers the status, whether the function failed, and the body.
    pub async fn invoke(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(StatusCode, bool, String)> {
        let req = self
            .http
            .post(self.url(&format!("/v1/functions/{name}/invoke")))
            .header("content-type", content_type)
            .body(body);
        let (status, failed, body) = self.send(req).await?;
        Ok((status, failed, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Starts a map (one invocation per line of `items`); answers the response, whose
    /// body streams one line per item, once the server has accepted the map.
    pub async fn map(
        &self,
        name: &str,
        items: Vec<u8>,
        concurrency: usize,
        retries: u32,
    ) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/functions/{name}/map")))
            .query(&[
                ("concurrency", concurrency as u64),
                ("retries", retries.into()),
            ])
            .header("content-type", "application/x-ndjson")
            .body(items);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the modelfn server at {}", self.base))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            bail!("{} ({status})", error_message(&body));
        }
        Ok(resp)
    }
}
