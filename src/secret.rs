//! A string that must never reach a log: Debug prints a placeholder, the bytes are wiped on drop.

use std::fmt;
use zeroize::Zeroizing;

/// A secret value (legacy secret, API token, opaque key, rendered private file).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The value itself; call only where it is written to a file or used to sign.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("super-secret-value");
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }
}
