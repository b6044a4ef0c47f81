//! The schema the store's tables live in.

use std::fmt;

/// A schema name that is safe to splice into SQL: 1 to 63 bytes of lowercase
/// ASCII letters, digits and `_`, not starting with a digit nor with `pg_`
/// (PostgreSQL reserves those). Such a name means the same quoted or not.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Schema(String);

/// A schema name [`PostgresStore`](crate::PostgresStore) refuses; it is the
/// source of the [`StoreError::Backend`](ibiki_core::StoreError::Backend)
/// that reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid schema name {name:?}: use 1 to 63 lowercase ASCII letters, digits and '_', \
     not starting with a digit or \"pg_\""
)]
pub struct InvalidSchemaName {
    name: String,
}

impl InvalidSchemaName {
    /// The refused name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Schema {
    /// PostgreSQL's identifier limit, in bytes.
    const MAX_LEN: usize = 63;

    pub(crate) fn new(name: &str) -> Result<Self, InvalidSchemaName> {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        let valid = (1..=Self::MAX_LEN).contains(&name.len())
            && name.bytes().all(allowed)
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && !name.starts_with("pg_");
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidSchemaName {
                name: name.to_owned(),
            })
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted identifier, for SQL text.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_identifiers_only() {
        for good in ["ibiki", "_x", "sms_2024", &"a".repeat(63)] {
            assert!(Schema::new(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "Ibiki",
            "1abc",
            "pg_ibiki",
            "a-b",
            "a b",
            "a\"; DROP TABLE x; --",
            "é",
            &"a".repeat(64),
        ] {
            assert!(Schema::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quotes() {
        let schema = Schema::new("ibiki").expect("valid");
        assert_eq!(schema.quoted(), "\"ibiki\"");
    }
}
