//! Validated names: agent ids and collection names.
//!
//! Both are checked once, at the boundary, so the rest of the code can take them as given.
//! An agent id is 1..=64 chars of `[a-z0-9._-]` (DESIGN §2); a collection name is 1..=128 chars
//! of `[A-Za-z0-9._-]`.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or longer than the maximum.
    #[error("must be 1 to {max} characters long, got {len}")]
    Length {
        /// The maximum length.
        max: usize,
        /// The length that was given.
        len: usize,
    },
    /// A character outside the allowed set.
    #[error("character {0:?} is not allowed (allowed: {1})")]
    Char(char, &'static str),
}

fn check(
    s: &str,
    max: usize,
    allowed: fn(u8) -> bool,
    desc: &'static str,
) -> Result<(), NameError> {
    if s.is_empty() || s.len() > max {
        return Err(NameError::Length { max, len: s.len() });
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii() || !allowed(*c as u8)) {
        return Err(NameError::Char(c, desc));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $allowed:expr, $desc:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The longest accepted name, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                check(&s, $max, $allowed, $desc)?;
                Ok($name(s))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A node's identity in the cluster: 1..=64 chars of `[a-z0-9._-]`.
    AgentId,
    64,
    |b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'),
    "a-z 0-9 . _ -"
);

name_type!(
    /// The collection a record belongs to: 1..=128 chars of `[A-Za-z0-9._-]`.
    Collection,
    128,
    |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'),
    "A-Z a-z 0-9 . _ -"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_id_accepts_the_documented_alphabet_only() {
        assert!(AgentId::new("replica-eu.2_a").is_ok());
        assert!(AgentId::new("a".repeat(64)).is_ok());
        assert_eq!(AgentId::new(""), Err(NameError::Length { max: 64, len: 0 }));
        assert_eq!(
            AgentId::new("a".repeat(65)),
            Err(NameError::Length { max: 64, len: 65 })
        );
        assert_eq!(
            AgentId::new("Primary"),
            Err(NameError::Char('P', "a-z 0-9 . _ -"))
        );
        assert!(matches!(
            AgentId::new("pr/imary"),
            Err(NameError::Char('/', _))
        ));
        assert!(matches!(AgentId::new("é"), Err(NameError::Char('é', _))));
    }

    #[test]
    fn collection_allows_upper_case_and_rejects_separators() {
        assert!(Collection::new("Orders.2024").is_ok());
        assert!(Collection::new("a b").is_err());
        assert!(Collection::new("x".repeat(129)).is_err());
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let ok: AgentId = serde_json::from_str("\"primary\"").unwrap();
        assert_eq!(ok.as_str(), "primary");
        assert!(serde_json::from_str::<AgentId>("\"PRIMARY\"").is_err());
    }
}
