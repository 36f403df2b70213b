//! Object-store triggers: a function's `[[objects]]` tables, each a mapping from a bucket
//! (a prefix and a suffix of its keys) to the function, as an S3 event notification
//! invokes a Lambda function. And the names a bucket and a key may have.

use serde::{Deserialize, Serialize};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectEvent {
    /// Written (S3's `ObjectCreated:Put`).
    Created,
    /// Deleted (S3's `ObjectRemoved:Delete`).
    Removed,
}

impl ObjectEvent {
    /// S3's event name.
    pub fn s3_name(self) -> &'static str {
        match self {
            ObjectEvent::Created => "ObjectCreated:Put",
            ObjectEvent::Removed => "ObjectRemoved:Delete",
        }
    }
}

/// One `[[objects]]` table of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectTrigger {
    pub bucket: String,
    /// Only keys that start with this.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Only keys that end with this.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
    /// Which events (`["created"]` by default).
    #[serde(default = "created")]
    pub events: Vec<ObjectEvent>,
    /// The alias or version to invoke (the latest by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
}

fn created() -> Vec<ObjectEvent> {
    vec![ObjectEvent::Created]
}

impl ObjectTrigger {
    /// Whether `event` on `bucket`/`key` invokes the function.
    pub fn matches(&self, bucket: &str, key: &str, event: ObjectEvent) -> bool {
        self.bucket == bucket
            && key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self.events.contains(&event)
    }

    pub fn validate(&self) -> Result<(), String> {
        check_bucket(&self.bucket)?;
        if self.events.is_empty() {
            return Err("events is empty: name \"created\", \"removed\" or both".into());
        }
        if self.prefix.len() > 1024 || self.suffix.len() > 1024 {
            return Err("prefix and suffix are at most 1024 bytes".into());
        }
        Ok(())
    }
}

/// S3's rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending
/// with a letter or a digit.
pub fn check_bucket(b: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !b.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bucket {b:?} must be 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or a digit"
        ))
    }
}

/// A key: 1 to 1024 bytes of path segments separated by `/`, each at most 255 bytes (a
/// file name's limit), none empty, `.` or `..`,
/// none starting with `.` (where modelfn keeps its own files), no control characters.
pub fn check_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > 1024 {
        return Err(format!("a key is 1 to 1024 bytes, not {}", k.len()));
    }
    if k.chars().any(char::is_control) || k.contains('\\') {
        return Err(format!(
            "key {k:?} holds a control character or a backslash"
        ));
    }
    if let Some(long) = k.split('/').find(|s| s.len() > 255) {
        return Err(format!(
            "a part of a key between slashes is at most 255 bytes, not {}",
            long.len()
        ));
    }
    if let Some(bad) = k.split('/').find(|s| s.is_empty() || s.starts_with('.')) {
        return Err(format!(
            "key {k:?}: each part between slashes must be non-empty and not start with '.' (found {bad:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_match_prefix_suffix_and_event() {
        let t: ObjectTrigger =
            toml::from_str("bucket = \"uploads\"\nprefix = \"in/\"\nsuffix = \".csv\"\n").unwrap();
        t.validate().unwrap();
        assert!(t.matches("uploads", "in/a.csv", ObjectEvent::Created));
        assert!(!t.matches("uploads", "in/a.json", ObjectEvent::Created));
        assert!(!t.matches("uploads", "out/a.csv", ObjectEvent::Created));
        assert!(!t.matches("uploads", "in/a.csv", ObjectEvent::Removed));
        assert!(!t.matches("other", "in/a.csv", ObjectEvent::Created));
    }

    #[test]
    fn names_and_keys_are_checked() {
        assert!(check_bucket("uploads").is_ok());
        for bad in ["Up", "ab", "-ab", "a..b", "a_b"] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
        assert!(check_key("in/2026/a.csv").is_ok());
        for bad in [
            "",
            "/a",
            "a//b",
            "../a",
            "a/../b",
            "a/.hidden",
            "a\nb",
            "a\\b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_key(&"x".repeat(256)).is_err(),
            "a part past a file name's limit"
        );
    }
}
