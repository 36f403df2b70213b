//! Tables of invocation records, the cost report and the cluster's nodes.

use super::{opt, render, when};
use modelfn_telemetry::cost::CostReport;

/// `modelfn invocations` (the header only on the first page; a NODE column when the
/// records are several nodes').
pub fn invocations(list: &[super::ListedRecord], header: bool) -> String {
    if list.is_empty() {
        return "no invocations recorded\n".into();
    }
    let nodes = list.iter().any(|l| l.node.is_some());
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|l| {
            let r = &l.record;
            let mut row = vec![node_cell(l, nodes)];
            row.extend([
                modelfn_telemetry::time::rfc3339_ms(r.start_ms),
                r.request_id.clone(),
                r.version.to_string(),
                r.outcome.as_str().to_string(),
                format!("{:.2}", r.duration_ms),
                r.billed_ms.to_string(),
                if r.cold {
                    format!("cold ({} ms)", opt(r.init_ms.map(|m| format!("{m:.0}"))))
                } else {
                    "warm".into()
                },
                format!("{:.2}", r.queue_wait_ms),
                format!("{}/{}", opt(r.max_memory_used_mb), r.memory_mb),
                opt(r.error.as_deref()),
            ]);
            if !nodes {
                row.remove(0);
            }
            row
        })
        .collect();
    let mut head = vec!["NODE"];
    if !nodes {
        head.clear();
    }
    head.extend([
        "START",
        "REQUEST ID",
        "VERSION",
        "OUTCOME",
        "MS",
        "BILLED",
        "START KIND",
        "QUEUE MS",
        "MEM MB",
        "ERROR",
    ]);
    let text = render(&head, &rows);
    if header {
        text
    } else {
        text.lines().skip(1).map(|l| format!("{l}\n")).collect()
    }
}

fn node_cell(l: &super::ListedRecord, nodes: bool) -> String {
    if nodes {
        opt(l.node.as_deref())
    } else {
        String::new()
    }
}

/// `modelfn cost`.
pub fn cost(c: &CostReport) -> String {
    let who = c.function.as_deref().unwrap_or("all functions");
    let mut out = format!(
        "{who}, the last {:.0} days: {} invocations, {:.1} GB-s, {:.1} s billed\n",
        c.period_days, c.recorded.invocations, c.recorded.gb_seconds, c.recorded.billed_seconds
    );
    if let Some(p) = &c.projected {
        out += &format!(
            "projected: {} a day for {} days = {} invocations, {:.0} GB-s\n",
            p.per_day, p.days, p.usage.invocations, p.usage.gb_seconds
        );
    }
    let rows = vec![
        vec![
            "Lambda invocations".into(),
            format!("${:.4}", c.lambda_invocations_usd),
        ],
        vec![
            "Lambda compute (GB-s)".into(),
            format!("${:.4}", c.lambda_compute_usd),
        ],
        vec!["API Gateway".into(), format!("${:.4}", c.api_gateway_usd)],
        vec![
            "serverless total".into(),
            format!("${:.2}", c.serverless_usd),
        ],
        vec!["always-on server".into(), format!("${:.2}", c.server_usd)],
        vec!["saving".into(), format!("{:.1}%", c.saving_percent)],
    ];
    out + &render(&["", "USD"], &rows)
}

/// `modelfn cluster status`.
pub fn cluster(c: &modelfn_control::ClusterStatus) -> String {
    let rows: Vec<Vec<String>> = c
        .nodes
        .iter()
        .map(|n| {
            let state = match n.state {
                modelfn_control::cluster::NodeState::Up => "up",
                modelfn_control::cluster::NodeState::Lost => "lost",
            };
            let behind = c.generation.saturating_sub(n.node.generation);
            vec![
                if n.node.name == c.this_node {
                    format!("{} (this)", n.node.name)
                } else {
                    n.node.name.clone()
                },
                n.node.address.clone(),
                state.to_string(),
                format!("{:.1}s ago", n.seen_ago_ms as f64 / 1000.0),
                if behind == 0 {
                    n.node.generation.to_string()
                } else {
                    format!("{} ({behind} behind)", n.node.generation)
                },
                n.node.in_flight.to_string(),
                n.node.version.clone(),
                when(n.node.started_ms),
            ]
        })
        .collect();
    let store = if c.shared {
        "shared store (PostgreSQL)"
    } else {
        "this node's own store (SQLite): a cluster of one"
    };
    format!(
        "{} node(s), {store}, generation {}\n{}",
        c.nodes.len(),
        c.generation,
        render(
            &[
                "NODE",
                "ADDRESS",
                "STATE",
                "LAST SEEN",
                "GENERATION",
                "RUNNING",
                "VERSION",
                "STARTED"
            ],
            &rows
        )
    )
}
