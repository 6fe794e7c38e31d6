//! `u64` hashes as 16 hex digits in human-readable formats (JSON, CSV), as integers elsewhere.
//!
//! JSON numbers above 2^53 lose precision in many readers; a hash must survive any of them.

use serde::{Deserialize, Deserializer, Serializer};

/// Formats a hash the way every human-readable output of the archive writes it.
pub fn format(h: u64) -> String {
    format!("{h:016x}")
}

/// Parses 1 to 16 hex digits.
pub fn parse(s: &str) -> Result<u64, String> {
    if s.is_empty() || s.len() > 16 {
        return Err(format!("hash {s:?} must be 1 to 16 hex digits"));
    }
    u64::from_str_radix(s, 16).map_err(|_| format!("hash {s:?} must be 1 to 16 hex digits"))
}

pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(h) if s.is_human_readable() => s.serialize_some(&super::format(*h)),
            Some(h) => s.serialize_some(h),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        if d.is_human_readable() {
            let s: Option<String> = Option::deserialize(d)?;
            s.map(|s| super::parse(&s).map_err(serde::de::Error::custom)).transpose()
        } else {
            Option::<u64>::deserialize(d)
        }
    }
}
