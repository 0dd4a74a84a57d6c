//! The opaque API keys (`sb_publishable_…`, `sb_secret_…`) of self-hosted Supabase.
//!
//! Format: `prefix + R + "_" + C`, where `R` is the first 22 characters of base64url of 17
//! random bytes and `C` the first 8 characters of base64url(sha256("supabase-self-hosted|" +
//! prefix + R)).

use crate::error::{Error, Result};
use crate::jwk::b64;
use crate::secret::Secret;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Publishable,
    Secret,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Publishable => "sb_publishable_",
            Kind::Secret => "sb_secret_",
        }
    }

    pub fn variable(self) -> &'static str {
        match self {
            Kind::Publishable => "SUPABASE_PUBLISHABLE_KEY",
            Kind::Secret => "SUPABASE_SECRET_KEY",
        }
    }
}

/// The most characters an opaque key may have after its prefix.
const MAX_REST: usize = 128;

fn checksum(prefix: &str, random: &str) -> String {
    let digest = Sha256::digest(format!("supabase-self-hosted|{prefix}{random}").as_bytes());
    b64(&digest)[..8].to_owned()
}

pub fn generate(kind: Kind) -> Result<Secret> {
    let mut bytes = [0u8; 17];
    crate::fill_random(&mut bytes)?;
    let random = &b64(&bytes)[..22];
    let prefix = kind.prefix();
    Ok(Secret::new(format!(
        "{prefix}{random}_{}",
        checksum(prefix, random)
    )))
}

/// Checks a key given by the operator. It must carry the right prefix and only base64url
/// characters: the value is embedded in Lua string literals and env files, where a quote
/// would break (or inject into) the configuration.
pub fn validate(kind: Kind, value: &str) -> Result<()> {
    let prefix = kind.prefix();
    let rest = value.strip_prefix(prefix).ok_or_else(|| {
        Error::invalid(
            kind.variable(),
            format!("does not start with {prefix}"),
            "Leave it unset to have supakeys generate one, or paste the whole key.",
        )
    })?;
    // Generated keys have 31 characters after the prefix; the bound keeps a value that is
    // copied into four files and every Lua expression of kong.yml small.
    let safe = (16..=MAX_REST).contains(&rest.len())
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !safe {
        let problem = match crate::error::stray_whitespace(rest) {
            Some(ws) => format!(
                "{ws}; it must continue with 16 to {MAX_REST} characters of A-Z a-z 0-9 - _"
            ),
            None => format!("must continue with 16 to {MAX_REST} characters of A-Z a-z 0-9 - _"),
        };
        return Err(Error::invalid(
            kind.variable(),
            problem,
            "Leave it unset to have supakeys generate one.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_follow_the_self_hosted_format() {
        for kind in [Kind::Publishable, Kind::Secret] {
            let key = generate(kind).unwrap();
            let rest = key.expose().strip_prefix(kind.prefix()).unwrap();
            let (random, check) = rest.split_at(22);
            assert_eq!(check.len(), 9);
            assert_eq!(&check[1..], checksum(kind.prefix(), random));
            validate(kind, key.expose()).unwrap();
        }
    }

    #[test]
    fn checksum_matches_an_independent_computation() {
        // Computed with Python's hashlib and base64 from the format's definition.
        assert_eq!(checksum("sb_secret_", "AAAAAAAAAAAAAAAAAAAAAA"), "7cwZOLm2");
    }

    #[test]
    fn rejects_wrong_prefix_and_quotes() {
        assert!(
            validate(
                Kind::Secret,
                "sb_publishable_abcdefghijklmnopqrstuv_12345678"
            )
            .is_err()
        );
        assert!(validate(Kind::Secret, "sb_secret_abc'defghijklmnopqrstuv_12345678").is_err());
        assert!(validate(Kind::Secret, "sb_secret_short").is_err());
    }
}
