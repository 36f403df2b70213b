//! Tables of invocation records and the cost report.

use super::{opt, render};
use modelfn_telemetry::cost::CostReport;
use modelfn_telemetry::InvocationRecord;

/// `modelfn invocations` (the header only on the first page).
pub fn invocations(list: &[InvocationRecord], header: bool) -> String {
    if list.is_empty() {
        return "no invocations recorded\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
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
            ]
        })
        .collect();
    let text = render(
        &[
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
        ],
        &rows,
    );
    if header {
        text
    } else {
        text.lines().skip(1).map(|l| format!("{l}\n")).collect()
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
