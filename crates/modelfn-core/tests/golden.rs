//! Golden files for manifest errors: each `tests/manifests/NAME.toml` is refused with
//! exactly the message in `NAME.err`. Run with `BLESS=1` to write the `.err` files anew
//! (then read every diff before committing it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_core::Manifest;
use std::path::Path;

#[test]
fn every_bad_manifest_gets_its_exact_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
    let bless = std::env::var_os("BLESS").is_some();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        let err = match Manifest::from_toml(&text) {
            Ok(m) => panic!("{} was accepted: {m:?}", path.display()),
            Err(e) => e.to_string(),
        };
        let golden = path.with_extension("err");
        if bless {
            std::fs::write(&golden, format!("{err}\n")).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}", golden.display()));
        assert_eq!(err, want.trim_end(), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} golden manifests");
}
