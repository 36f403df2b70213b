//! A function as callers name it: a name and a qualifier (`$LATEST`, a version number or
//! an alias), resolved by the scheduler in one place for every door.

use std::fmt;

/// Which version of a function a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// The newest deploy (no qualifier, or `$LATEST`).
    Latest,
    /// One version by number.
    Version(u64),
    /// A named alias (not built yet: every alias resolves to nothing).
    Alias(String),
}

impl Qualifier {
    /// `$LATEST`, a version number, or an alias name.
    pub fn parse(s: &str) -> Qualifier {
        if s == "$LATEST" {
            Qualifier::Latest
        } else if let Ok(v) = s.parse::<u64>() {
            Qualifier::Version(v)
        } else {
            Qualifier::Alias(s.to_string())
        }
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Latest => f.write_str("$LATEST"),
            Qualifier::Version(v) => write!(f, "{v}"),
            Qualifier::Alias(a) => f.write_str(a),
        }
    }
}

/// A function and the version a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Qualifier,
}

impl FunctionRef {
    pub fn new(name: impl Into<String>, qualifier: Option<&str>) -> Self {
        FunctionRef {
            name: name.into(),
            qualifier: qualifier.map_or(Qualifier::Latest, Qualifier::parse),
        }
    }

    /// The latest version of `name`.
    pub fn latest(name: impl Into<String>) -> Self {
        FunctionRef {
            name: name.into(),
            qualifier: Qualifier::Latest,
        }
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.qualifier {
            Qualifier::Latest => f.write_str(&self.name),
            q @ (Qualifier::Version(_) | Qualifier::Alias(_)) => write!(f, "{}:{q}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_read_as_lambda_writes_them() {
        assert_eq!(FunctionRef::new("f", None).qualifier, Qualifier::Latest);
        assert_eq!(Qualifier::parse("$LATEST"), Qualifier::Latest);
        assert_eq!(Qualifier::parse("3"), Qualifier::Version(3));
        assert_eq!(Qualifier::parse("prod"), Qualifier::Alias("prod".into()));
        assert_eq!(FunctionRef::new("f", Some("3")).to_string(), "f:3");
        assert_eq!(FunctionRef::latest("f").to_string(), "f");
    }
}
