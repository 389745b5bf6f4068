//! Identifiers, parsed once at the edge and trusted everywhere after ("parse, don't validate").
//!
//! Each type has a private field and a fallible `parse`; serde goes through `parse` too, so an invalid id
//! can never be deserialized into the model.

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IdError {
    /// Stable code, e.g. `INVALID_ACCOUNT_ID`.
    pub code: &'static str,
    /// What was expected.
    pub message: String,
}

fn hex_tail(s: &str, prefix: &str, min: usize, max: usize) -> bool {
    s.strip_prefix(prefix).is_some_and(|t| {
        (min..=max).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $code:literal, $what:literal, |$s:ident| $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the identifier.
            ///
            /// # Errors
            /// Returns an [`IdError`] with a stable code when the text is not of the expected form.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let $s = text;
                if $valid {
                    Ok(Self(text.to_owned()))
                } else {
                    let shown: String = text.chars().take(64).collect();
                    Err(IdError { code: $code, message: format!("{shown:?} is not {}", $what) })
                }
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A 12-digit AWS account id.
    AccountId, "INVALID_ACCOUNT_ID", "an AWS account id (12 digits)",
    |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
);

id_type!(
    /// An AWS region code such as `eu-west-1` or `us-gov-west-1`.
    Region, "INVALID_REGION", "an AWS region code such as eu-west-1",
    |s| valid_region(s)
);

id_type!(
    /// An EC2 instance id: `i-` and 8 or 17 lowercase hex digits.
    InstanceId, "INVALID_INSTANCE_ID", "an EC2 instance id (i- and 8 to 17 lowercase hex digits)",
    |s| hex_tail(s, "i-", 8, 17)
);

id_type!(
    /// A DRS source server id: `s-` and 17 lowercase hex digits.
    SourceServerId, "INVALID_SOURCE_SERVER_ID", "a DRS source server id (s- and 17 lowercase hex digits)",
    |s| hex_tail(s, "s-", 17, 17)
);

id_type!(
    /// A VPC subnet id: `subnet-` and 8 to 17 lowercase hex digits.
    SubnetId, "INVALID_SUBNET_ID", "a subnet id (subnet- and 8 to 17 lowercase hex digits)",
    |s| hex_tail(s, "subnet-", 8, 17)
);

id_type!(
    /// A protection group id: `pg-` and 1 to 32 lowercase hex digits (Roundtrip's own).
    ProtectionGroupId, "INVALID_PROTECTION_GROUP_ID", "a protection group id (pg- and lowercase hex digits)",
    |s| hex_tail(s, "pg-", 1, 32)
);

id_type!(
    /// A pair id: `pair-` and the 17 hex digits of its source server (one pair per source server and group).
    PairId, "INVALID_PAIR_ID", "a pair id (pair- and 17 lowercase hex digits)",
    |s| hex_tail(s, "pair-", 17, 17)
);

fn valid_region(s: &str) -> bool {
    // <area>(-<qualifier>)*-<direction>-<digit(s)>: at least three dash-separated parts, letters then a number.
    if s.len() > 32 {
        return false;
    }
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, head)) = parts.split_last() else { return false };
    parts.len() >= 3
        && (1..=2).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_digit())
        && head.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && head[0].len() == 2
}

impl PairId {
    /// The pair id of a source server: one pair per source server within a protection group.
    pub fn for_source(source: &SourceServerId) -> Self {
        Self(format!("pair-{}", &source.as_str()[2..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("123456789012", true)]
    #[case("12345678901", false)]
    #[case("1234567890123", false)]
    #[case("12345678901a", false)]
    #[case("", false)]
    fn account_ids_are_twelve_digits(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(AccountId::parse(text).is_ok(), ok, "{text}");
    }

    #[rstest]
    #[case("eu-west-1", true)]
    #[case("us-gov-west-1", true)]
    #[case("ap-southeast-2", true)]
    #[case("EU-WEST-1", false)]
    #[case("eu-west", false)]
    #[case("euwest1", false)]
    #[case("eu--1", false)]
    #[case("europe-west-1", false)]
    fn regions_look_like_aws_region_codes(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(Region::parse(text).is_ok(), ok, "{text}");
    }

    #[test]
    fn an_instance_id_without_the_i_prefix_is_rejected() {
        let err = InstanceId::parse("0abc12345678").unwrap_err();
        assert_eq!(err.code, "INVALID_INSTANCE_ID");
        assert!(InstanceId::parse("i-0abc1234").is_ok());
        assert!(InstanceId::parse("i-0abc1234567890def").is_ok());
        assert!(InstanceId::parse("i-0ABC1234").is_err());
    }

    #[test]
    fn ids_deserialize_only_through_parse() {
        let ok: Result<SourceServerId, _> = serde_json::from_str("\"s-1234567890abcdef0\"");
        assert!(ok.is_ok());
        let bad: Result<SourceServerId, _> = serde_json::from_str("\"s-12\"");
        assert!(bad.is_err());
    }

    #[test]
    fn a_pair_id_is_derived_from_its_source_server() {
        let s = SourceServerId::parse("s-1234567890abcdef0").unwrap();
        assert_eq!(PairId::for_source(&s).as_str(), "pair-1234567890abcdef0");
    }
}
