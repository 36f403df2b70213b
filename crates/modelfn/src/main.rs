//! `modelfn`: the command line. `serve` and `demo` run the server; the other commands
//! talk to a running server over HTTP.

mod client;
mod commands;
mod config;
mod demo;
mod layer;
mod memory;
mod progress;
mod server;
mod sklearn;
mod stores;
mod table;

use clap::Parser;

/// mimalloc: the request path allocates many small, short-lived buffers, where glibc's
/// allocator showed up at ~15% of the CPU under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(memory::on_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modelfn: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modelfn: {}", table::printable(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
