//! `modelfn map`: one invocation per line of a JSON Lines file, run by the server at most
//! `--concurrency` at once, with a progress line, and the results gathered in order.

use super::Conn;
use crate::progress::Line;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct MapCommand {
    /// The function: `name`, `name:alias` or `name:3`.
    name: String,
    /// JSON Lines, one event per line (`-` for standard input).
    #[arg(long, short)]
    input: PathBuf,
    /// Invocations at once, at most (up to 1000).
    #[arg(long, short, default_value_t = 16)]
    concurrency: usize,
    /// Further attempts for an item whose invocation failed (throttles wait and do not
    /// count).
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Write the results here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Write each item's result alone (`null` for a failed item) instead of its whole
    /// line (`index`, `request_id`, `attempts`, `ok`, `result` or `error`).
    #[arg(long)]
    results_only: bool,
    #[command(flatten)]
    conn: Conn,
}

impl MapCommand {
    pub async fn run(self) -> Result<()> {
        let items = if self.input.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the items from standard input")?;
            buf
        } else {
            std::fs::read(&self.input)
                .with_context(|| format!("reading the items from {}", self.input.display()))?
        };
        let total = items
            .split(|b| *b == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
            .count();
        let mut out: Box<dyn Write> = match &self.output {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        let client = self.conn.client()?;
        let started = Instant::now();
        let mut resp = client
            .map(&self.name, items, self.concurrency, self.retries)
            .await?;
        let mut tally = Tally::default();
        let mut line = Line::new();
        let mut pending = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .context("the server stopped answering the map")?
        {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let one: Vec<u8> = pending.drain(..=end).collect();
                tally.write(&one, self.results_only, &mut out)?;
            }
            let per_s = tally.done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            line.show(&format!(
                "map {}: {}/{total} done, {} failed, {per_s:.0}/s",
                self.name, tally.done, tally.failed
            ));
        }
        out.flush()?;
        line.finish(&format!(
            "map {}: {} items, {} succeeded, {} failed, {} retried, in {:.1} s",
            self.name,
            tally.done,
            tally.done - tally.failed,
            tally.failed,
            tally.retried,
            started.elapsed().as_secs_f64()
        ));
        if tally.done != total {
            bail!(
                "the server answered {} of {total} items (the connection ended)",
                tally.done
            );
        }
        if let Some(first) = tally.first_failure {
            bail!("{} items failed; the first: {first}", tally.failed);
        }
        Ok(())
    }
}

/// What the answered lines add up to.
#[derive(Default)]
struct Tally {
    done: usize,
    failed: usize,
    retried: usize,
    first_failure: Option<String>,
}

impl Tally {
    /// Counts one answered line and writes it (or its result) to `out`.
    fn write(&mut self, one: &[u8], results_only: bool, out: &mut dyn Write) -> Result<()> {
        let v: serde_json::Value =
            serde_json::from_slice(one).context("a line of the server's answer is not JSON")?;
        self.done += 1;
        if v["attempts"].as_u64().is_some_and(|a| a > 1) {
            self.retried += 1;
        }
        let ok = v["ok"].as_bool() == Some(true);
        if !ok {
            self.failed += 1;
            if self.first_failure.is_none() {
                self.first_failure = Some(format!(
                    "item {}: {}: {}",
                    v["index"],
                    v["error"]["type"].as_str().unwrap_or("?"),
                    v["error"]["message"].as_str().unwrap_or("?")
                ));
            }
        }
        if results_only {
            serde_json::to_writer(&mut *out, &v["result"])?;
            out.write_all(b"\n")?;
        } else {
            out.write_all(one)?;
        }
        Ok(())
    }
}
