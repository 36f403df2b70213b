//! Versions and aliases end to end: every deploy is a version; aliases point at one or
//! split traffic by weight or by a sticky key; each door takes the alias as a qualifier
//! and reports the version that ran; bad moves are refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, example, header, invoke as post, KeepAlive, Server};
use std::collections::HashMap;

const ROW: &str = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;

/// Three versions of iris, told apart by their descriptions.
fn three_versions(s: &Server, work: &std::path::Path) {
    let pkg = work.join("iris");
    copy_dir(&example("iris"), &pkg);
    for v in 1..=3 {
        common::set_description(&pkg, &format!("v{v}"));
        s.deploy(&pkg);
    }
}

/// `n` POSTs of `ROW` to `path` on one connection, each with `headers`, answering the
/// `x-modelfn-version` of every response.
fn versions_of(addr: &str, path: &str, n: usize, headers: &str) -> Vec<String> {
    let mut conn = KeepAlive::connect(addr);
    (0..n)
        .map(|_| {
            let (status, version, body) = conn.post(path, headers, ROW);
            assert_eq!(status, 200, "{body}");
            version
        })
        .collect()
}

#[test]
fn aliases_route_by_weight_and_by_key_at_every_door() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Unsigned Lambda calls keep the test about versions, not signatures.
    let s = Server::start_unsigned(dir.path());
    three_versions(&s, work.path());
    let (ok, out, err) = s.cli(&["versions", "iris"]);
    assert!(ok, "{err}");
    assert!(out.contains("3 ($LATEST)") && out.contains("v1"), "{out}");

    // One version: every door runs it and says so.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "2"]);
    assert!(ok, "{err}");
    let (code, h, body) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(
        (code, header(&h, "x-modelfn-version")),
        (200, Some("2")),
        "{body}"
    );
    let (code, h, body) = post(
        &format!(
            "{}/2015-03-31/functions/iris/invocations?Qualifier=prod",
            s.url
        ),
        ROW,
    );
    assert_eq!(
        (code, header(&h, "x-amz-executed-version")),
        (200, Some("2")),
        "{body}"
    );
    let (code, h, _) = post(&format!("{}/v1/functions/iris:1/invoke", s.url), ROW);
    assert_eq!((code, header(&h, "x-modelfn-version")), (200, Some("1")));
    let (code, h, _) = post(&format!("{}/v1/functions/iris/invoke", s.url), ROW);
    assert_eq!((code, header(&h, "x-modelfn-version")), (200, Some("3")));

    // Weights: 60/30/10 over 10,000 calls, each share within 3 points.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "split", "1:60,2:30,3:10"]);
    assert!(ok, "{err}");
    let addr = s.url.trim_start_matches("http://");
    let ran = versions_of(addr, "/v1/functions/iris:split/invoke", 10_000, "");
    let mut count: HashMap<String, usize> = HashMap::new();
    for v in ran {
        *count.entry(v).or_default() += 1;
    }
    for (v, want) in [("1", 60.0), ("2", 30.0), ("3", 10.0)] {
        let got = count.get(v).copied().unwrap_or(0) as f64 / 100.0;
        assert!(
            (got - want).abs() <= 3.0,
            "version {v}: {got}% for {want}% ({count:?})"
        );
    }

    // Sticky: one user, one version, every time; different users spread.
    let (ok, _, err) = s.cli(&[
        "alias",
        "set",
        "iris",
        "ab",
        "1:50,3:50",
        "--sticky",
        "header:x-user",
    ]);
    assert!(ok, "{err}");
    let mut spread = HashMap::new();
    for user in 0..40 {
        let got = versions_of(
            addr,
            "/v1/functions/iris:ab/invoke",
            5,
            &format!("x-user: user-{user}\r\n"),
        );
        assert!(got.iter().all(|v| *v == got[0]), "user-{user}: {got:?}");
        *spread.entry(got[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(spread.len(), 2, "40 users all on one version: {spread:?}");

    // Moves are listed, with their history; a moved alias serves the new version at once.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "3"]);
    assert!(ok, "{err}");
    let (_, h, _) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("3"));
    let (ok, out, _) = s.cli(&["alias", "list", "iris"]);
    assert!(
        ok && out.contains("prod") && out.contains("history"),
        "{out}"
    );
    assert!(out.contains("2:100%") && out.contains("3:100%"), "{out}");

    // Refusals name what is wrong; nothing moves.
    for (args, why) in [
        (vec!["1:50,2:40"], "add up to 90"),
        (vec!["9"], "no version 9"),
        (vec!["1", "--sticky", "cookie:x"], "sticky"),
    ] {
        let mut a = vec!["alias", "set", "iris", "prod"];
        a.extend(args);
        let (ok, _, err) = s.cli(&a);
        assert!(!ok && err.contains(why), "{a:?}: {err}");
    }
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "42", "1"]);
    assert!(!ok && err.contains("not only digits"), "{err}");
    let (_, h, _) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("3"));

    // A version an alias uses, or the latest, cannot be deleted; another can.
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "3"]);
    assert!(!ok && err.contains("is the latest"), "{err}");
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "1"]);
    assert!(!ok && err.contains("in use by aliases ab, split"), "{err}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "split", "2:60,3:40"]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "ab", "2:50,3:50"]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "1"]);
    assert!(ok, "{err}");
    let (code, _, body) = post(&format!("{}/v1/functions/iris:1/invoke", s.url), ROW);
    assert_eq!(code, 404, "{body}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "old", "1"]);
    assert!(!ok && err.contains("no version 1"), "{err}");

    // API routes bind to an alias too; one naming an alias that does not exist is refused.
    let api = |target: &str| {
        let f = work.path().join("api.toml");
        let def = format!(
            "name = \"shop\"\n[[stages]]\nname = \"live\"\n[[routes]]\nmethod = \"POST\"\npath = \"/predict\"\nfunction = \"{target}\"\n"
        );
        std::fs::write(&f, def).unwrap();
        s.cli(&["api", "apply", f.to_str().unwrap()])
    };
    let (ok, _, err) = api("iris:nope");
    assert!(!ok && err.contains("no alias 'nope'"), "{err}");
    let (ok, _, err) = api("iris:prod");
    assert!(ok, "{err}");
    let (code, _, body) = post(&format!("{}/apis/shop/live/predict", s.url), ROW);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("virginica"), "{body}");

    // Deleted: the alias answers 404, naming it; the route bound to it says so too.
    let (ok, _, err) = s.cli(&["alias", "delete", "iris", "prod"]);
    assert!(ok, "{err}");
    let (code, _, body) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no alias 'prod'"), "{body}");
    let (code, _, body) = post(&format!("{}/apis/shop/live/predict", s.url), ROW);
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("no alias 'prod'"), "{body}");
}

/// Prediction and probabilities of a native iris answer.
fn label_and_probs(body: &str) -> (String, Vec<f64>) {
    let v = common::json(body);
    let probs = v["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_f64().unwrap())
        .collect();
    (v["prediction"].as_str().unwrap().to_string(), probs)
}

#[test]
fn shadow_traffic_reports_the_agreement_the_test_computes() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // The champion is iris's random forest; the challenger the same function with the
    // LightGBM model (same features and classes, slightly different answers).
    let pkg = work.path().join("iris");
    copy_dir(&example("iris"), &pkg);
    s.deploy(&pkg);
    std::fs::copy(
        example("lightgbm-iris").join("model.onnx"),
        pkg.join("model.onnx"),
    )
    .unwrap();
    s.deploy(&pkg);
    let (ok, out, err) = s.cli(&["alias", "set", "iris", "prod", "1", "--shadow", "2:100"]);
    assert!(ok, "{err}");
    assert!(out.contains("prod"), "{out}");

    // Rows across the feature space, where the two models sometimes disagree.
    let mut rows = Vec::new();
    for i in 0..200 {
        let f = |k: u32, lo: f64, hi: f64| lo + (hi - lo) * f64::from((i * k) % 97) / 96.0;
        rows.push(format!(
            r#"{{"sl": {:.2}, "sw": {:.2}, "pl": {:.2}, "pw": {:.2}}}"#,
            f(7, 4.3, 7.9),
            f(13, 2.0, 4.4),
            f(31, 1.0, 6.9),
            f(53, 0.1, 2.5)
        ));
    }
    let (mut equal, mut max_diff, mut sum_diff, mut n_diff) = (0u64, 0f64, 0f64, 0u64);
    for row in &rows {
        let (code, h, champion) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), row);
        assert_eq!(
            (code, header(&h, "x-modelfn-version")),
            (200, Some("1")),
            "{champion}"
        );
        // The test's own comparison: the same row on each version by number.
        let (_, _, one) = post(&format!("{}/v1/functions/iris:1/invoke", s.url), row);
        let (_, _, two) = post(&format!("{}/v1/functions/iris:2/invoke", s.url), row);
        assert_eq!(one, champion);
        let ((l1, p1), (l2, p2)) = (label_and_probs(&one), label_and_probs(&two));
        equal += u64::from(l1 == l2);
        for (a, b) in p1.iter().zip(&p2) {
            max_diff = max_diff.max((a - b).abs());
            sum_diff += (a - b).abs();
            n_diff += 1;
        }
    }
    assert!(
        equal < 200 && equal > 100,
        "the challenger should differ a little: {equal} of 200 equal"
    );

    // Mirrored calls run after the answers: wait for all 200 to be compared.
    let report = |s: &Server| {
        let (ok, out, err) = s.cli(&["alias", "shadow", "iris", "prod", "--json"]);
        assert!(ok, "{err}");
        common::json(&out)
    };
    let mut r = report(&s);
    for _ in 0..100 {
        if r["compared"] == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        r = report(&s);
    }
    assert_eq!(r["mirrored"], 200, "{r}");
    assert_eq!(r["compared"], 200, "{r}");
    assert_eq!(r["compared_as"], "model", "{r}");
    assert_eq!(r["labels_compared"], 200, "{r}");
    assert_eq!(r["labels_equal"], equal, "{r}");
    assert_eq!(r["agreed"], equal, "{r}");
    let agreement = r["agreement"].as_f64().unwrap();
    assert!((agreement - equal as f64 / 200.0).abs() < 1e-9, "{r}");
    let close = |got: &serde_json::Value, want: f64| (got.as_f64().unwrap() - want).abs() < 1e-6;
    assert!(
        close(&r["max_probability_difference"], max_diff),
        "{r} vs {max_diff}"
    );
    assert!(
        close(&r["mean_probability_difference"], sum_diff / n_diff as f64),
        "{r} vs {}",
        sum_diff / n_diff as f64
    );
    let (ok, out, _) = s.cli(&["alias", "shadow", "iris", "prod"]);
    assert!(
        ok && out.contains(&format!("labels equal: {equal} of 200")),
        "{out}"
    );

    // The challenger is in use: it cannot be deleted; an alias without a shadow has no
    // report; a bad share is refused.
    let manifest = std::fs::read_to_string(pkg.join("modelfn.toml")).unwrap();
    std::fs::write(
        pkg.join("modelfn.toml"),
        manifest.replace("100 trees", "v3"),
    )
    .unwrap();
    s.deploy(&pkg);
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "2"]);
    assert!(!ok && err.contains("in use by alias prod"), "{err}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "plain", "1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&["alias", "shadow", "iris", "plain"]);
    assert!(
        !ok && err.contains("no alias 'plain' with a shadow"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "1", "--shadow", "2:0"]);
    assert!(!ok && err.contains("shadow percent 0"), "{err}");
    // Moving the alias keeps the tally while the challenger stays.
    let (ok, _, err) = s.cli(&[
        "alias",
        "set",
        "iris",
        "prod",
        "1",
        "--shadow",
        "2:100",
        "--description",
        "again",
    ]);
    assert!(ok, "{err}");
    assert_eq!(report(&s)["compared"], 200);
}

#[test]
fn a_function_url_calls_the_version_or_alias_it_is_bound_to() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    three_versions(&s, work.path());
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "2"]);
    assert!(ok, "{err}");
    let (ok, out, err) = s.cli(&["url", "create", "iris:prod"]);
    assert!(ok && out.contains("calls iris:prod"), "{out} {err}");
    let url = format!("{}/urls/iris/", s.url);
    let (code, h, body) = post(&url, ROW);
    assert_eq!(
        (code, header(&h, "x-modelfn-version")),
        (200, Some("2")),
        "{body}"
    );
    assert!(body.contains("virginica"), "{body}");
    // Moving the alias moves the URL.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "1"]);
    assert!(ok, "{err}");
    let (_, h, _) = post(&url, ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("1"));
    // What the URL uses cannot go; a target that does not exist is refused.
    let (ok, _, err) = s.cli(&["alias", "delete", "iris", "prod"]);
    assert!(!ok && err.contains("URL of 'iris'"), "{err}");
    let (ok, _, err) = s.cli(&["url", "create", "iris:nope"]);
    assert!(!ok && err.contains("no alias 'nope'"), "{err}");
    let (ok, _, err) = s.cli(&["url", "create", "iris:2"]);
    assert!(ok, "{err}");
    let (_, h, _) = post(&url, ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("2"));
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "2"]);
    assert!(!ok && err.contains("the URL of 'iris'"), "{err}");
    // Unbound again: $LATEST.
    let (ok, _, err) = s.cli(&["url", "create", "iris"]);
    assert!(ok, "{err}");
    let (_, h, _) = post(&url, ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("3"));
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "2"]);
    assert!(ok, "{err}");
}
