//! Tables of versions, aliases, shadow reports, provisioned concurrency and the model
//! store.

use super::{mb, opt, render, when};
use modelfn_control::{
    AliasRecord, Aliases, FunctionDetail, ModelInfo, ModelMoved, ProvisionedStatus, Versions,
};

/// Moves of aliases `describe` shows (the newest; `modelfn alias list` shows all).
const RECENT_MOVES: usize = 10;

/// `modelfn describe`: the function, then its aliases with their recent moves, then its
/// provisioned concurrency.
pub fn detail(d: &FunctionDetail) -> String {
    let mut out = super::describe(&d.function);
    if !d.aliases.is_empty() || !d.alias_history.is_empty() {
        let skip = d.alias_history.len().saturating_sub(RECENT_MOVES);
        out += "\naliases\n";
        out += &aliases(&Aliases {
            aliases: d.aliases.clone(),
            history: d.alias_history[skip..].to_vec(),
        });
    }
    if !d.provisioned.is_empty() {
        out += "\nprovisioned concurrency\n";
        out += &provisioned(&d.provisioned);
    }
    out
}
use modelfn_scheduler::ShadowReport;

/// `modelfn versions`.
pub fn versions(v: &Versions) -> String {
    let rows: Vec<Vec<String>> = v
        .versions
        .iter()
        .map(|x| {
            let mut version = x.version.to_string();
            if x.version == v.latest {
                version += " ($LATEST)";
            }
            vec![
                version,
                when(x.created_at_ms),
                short(&x.code_sha256).to_string(),
                if x.serving { "yes" } else { "no" }.into(),
                x.description.clone(),
            ]
        })
        .collect();
    render(
        &["VERSION", "CREATED", "CODE", "SERVING", "DESCRIPTION"],
        &rows,
    )
}

fn routing(r: &[(u64, u32)]) -> String {
    if r.is_empty() {
        return "(deleted)".into();
    }
    r.iter()
        .map(|(v, w)| format!("{v}:{w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `modelfn alias set`.
pub fn alias_set(a: &AliasRecord) -> String {
    format!(
        "alias {} of {} -> {}\n",
        a.name,
        a.function,
        routing(&a.routing)
    )
}

/// `modelfn alias list`: the aliases, then every move.
pub fn aliases(a: &Aliases) -> String {
    let rows: Vec<Vec<String>> = a
        .aliases
        .iter()
        .map(|x| {
            vec![
                x.name.clone(),
                routing(&x.routing),
                x.sticky.clone().unwrap_or_else(|| "-".into()),
                x.shadow
                    .map_or_else(|| "-".into(), |s| format!("{}:{}%", s.version, s.percent)),
                when(x.updated_at_ms),
                x.updated_by.clone(),
            ]
        })
        .collect();
    let mut out = render(
        &["ALIAS", "ROUTING", "STICKY", "SHADOW", "MOVED", "BY"],
        &rows,
    );
    let moves: Vec<Vec<String>> = a
        .history
        .iter()
        .map(|x| {
            vec![
                when(x.updated_at_ms),
                x.name.clone(),
                routing(&x.routing),
                x.updated_by.clone(),
            ]
        })
        .collect();
    if !moves.is_empty() {
        out += "\nhistory\n";
        out += &render(&["WHEN", "ALIAS", "ROUTING", "BY"], &moves);
    }
    out
}

/// `modelfn model put|rollback`.
pub fn model_moved(m: &ModelMoved) -> String {
    let r = &m.model;
    let mut out = if m.changed {
        format!(
            "model {} revision {} ({}) is current\n",
            r.name,
            r.revision,
            short(&r.sha256)
        )
    } else {
        format!(
            "model {} revision {} was already current\n",
            r.name, r.revision
        )
    };
    if !m.switched.is_empty() {
        out += &format!("switched: {}\n", m.switched.join(", "));
    }
    out
}

/// `modelfn model list`.
pub fn models(list: &Vec<ModelInfo>) -> String {
    if list.is_empty() {
        return "no models in the store\n".into();
    }
    let mut rows = Vec::new();
    for m in list {
        let current = m.current.as_ref().map(|h| h.revision);
        for r in &m.revisions {
            rows.push(vec![
                m.name.clone(),
                if Some(r.revision) == current {
                    format!("{} (current)", r.revision)
                } else {
                    r.revision.to_string()
                },
                short(&r.sha256).to_string(),
                mb(r.size),
                when(r.created_at_ms),
                r.created_by.clone(),
                if Some(r.revision) == current {
                    m.followers.join(",")
                } else {
                    String::new()
                },
            ]);
        }
    }
    render(
        &[
            "MODEL",
            "REVISION",
            "SHA256",
            "SIZE",
            "CREATED",
            "BY",
            "FOLLOWED BY",
        ],
        &rows,
    )
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// `modelfn alias shadow`.
pub fn shadow(r: &ShadowReport) -> String {
    let share = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{:.2}%", v * 100.0));
    let num = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v:.6}"));
    let mut out = format!(
        "challenger: version {} ({}% of calls, compared as {})
mirrored: {}  compared: {}  agreed: {}  agreement: {}
",
        r.challenger,
        r.percent,
        r.compared_as,
        r.mirrored,
        r.compared,
        r.agreed,
        share(r.agreement)
    );
    if r.compared_as == "model" {
        out += &format!(
            "labels equal: {} of {}
probability difference: max {}  mean {}
",
            r.labels_equal,
            r.labels_compared,
            num(r.max_probability_difference),
            num(r.mean_probability_difference)
        );
    }
    out += &format!(
        "challenger errors: {}  skipped (too many mirrored calls at once): {}
",
        r.challenger_errors, r.skipped
    );
    out
}

/// `modelfn provisioned list`.
pub fn provisioned(list: &[ProvisionedStatus]) -> String {
    if list.is_empty() {
        return "no provisioned concurrency on any version or alias\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                p.qualifier.clone(),
                p.requested.to_string(),
                p.allocated.to_string(),
                p.status.clone(),
                when(p.updated_at_ms),
                p.updated_by.clone(),
                opt(p.status_reason.as_deref()),
            ]
        })
        .collect();
    render(
        &[
            "QUALIFIER",
            "REQUESTED",
            "UP",
            "STATUS",
            "SET",
            "BY",
            "REASON",
        ],
        &rows,
    )
}

/// `modelfn provisioned set`.
pub fn provisioned_one(p: &ProvisionedStatus) -> String {
    provisioned(std::slice::from_ref(p))
}
