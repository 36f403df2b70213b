//! Golden files for mapping templates: each `tests/templates/NAME.vtl` renders, for the
//! fixed request below, exactly `NAME.out`, or is refused with exactly `NAME.err`
//! (line and column included). `BLESS=1` writes them anew (read every diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_gateway::apis::template::{Inputs, Template};
use std::collections::BTreeMap;
use std::path::Path;

fn inputs() -> Inputs {
    let m = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    Inputs {
        body: r#"{"a": {"b": [1, 2, 3]}, "s": "x'y\"z"}"#.into(),
        path: m(&[("id", "42")]),
        query: m(&[
            ("num", "5"),
            ("sl", "6.9"),
            ("sw", "3.1"),
            ("pl", "5.1"),
            ("pw", "2.3"),
        ]),
        headers: m(&[("X-Key", "k1"), ("User-Agent", "curl/8")]),
        context: m(&[
            ("requestId", "req-1"),
            ("httpMethod", "GET"),
            ("stage", "PRD"),
            ("resourcePath", "/addfive"),
            ("apiId", "calc"),
            ("identity.sourceIp", "127.0.0.1"),
            ("identity.userAgent", "curl/8"),
        ]),
        stage_variables: m(&[("model", "iris")]),
    }
}

#[test]
fn every_template_renders_or_fails_as_its_golden_file_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/templates");
    let bless = std::env::var_os("BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vtl"))
        .collect();
    files.sort();
    let (mut ok, mut bad) = (0, 0);
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let (got, golden) = match Template::compile(&src) {
            Ok(t) => {
                ok += 1;
                (t.render(&inputs()), f.with_extension("out"))
            }
            Err(e) => {
                bad += 1;
                (e.to_string(), f.with_extension("err"))
            }
        };
        if bless {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}", golden.display()));
        assert_eq!(got, want, "{}", f.display());
    }
    assert!(
        ok >= 10 && bad >= 8,
        "{ok} rendering and {bad} refused templates"
    );
}
