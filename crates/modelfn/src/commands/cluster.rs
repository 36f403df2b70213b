//! `modelfn cluster status`: the nodes sharing this server's store.

use super::Conn;
use crate::table;
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Every node (up, or lost after 10 s without a record), its address, version, the
    /// generation of desired state it has applied and the calls it is running.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
}

impl ClusterCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            ClusterCommand::Status { conn } => {
                let out = conn.client()?.get_admin("/v1/cluster").await?;
                conn.show(out, table::cluster)
            }
        }
    }
}
