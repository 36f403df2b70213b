//! Function names: what Lambda accepts (1–64 of `A-Z a-z 0-9 - _`), checked once at the edge.

use std::fmt;

/// A validated function name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct FunctionName(String);

/// Why a string is not a function name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid function name '{name}': {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

impl FunctionName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, NameError> {
        let err = |reason| {
            Err(NameError {
                name: s.chars().take(80).collect(),
                reason,
            })
        };
        if s.is_empty() {
            return err("a name must not be empty");
        }
        if s.len() > Self::MAX_LEN {
            return err("a name has at most 64 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return err("use only letters, digits, '-' and '_'");
        }
        Ok(FunctionName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for FunctionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FunctionName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lambda_style_names() {
        for ok in ["iris", "breast-cancer", "my_fn_2", &"a".repeat(64)] {
            assert_eq!(FunctionName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        assert!(FunctionName::parse("")
            .unwrap_err()
            .reason
            .contains("empty"));
        assert!(FunctionName::parse(&"a".repeat(65))
            .unwrap_err()
            .reason
            .contains("64"));
        for bad in ["a/b", "a b", "../x", "é"] {
            assert!(FunctionName::parse(bad)
                .unwrap_err()
                .to_string()
                .contains("letters"));
        }
    }
}
