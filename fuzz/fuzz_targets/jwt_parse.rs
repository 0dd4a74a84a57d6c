//! `jwt::parse` and the HS256 check on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(parsed) = supakeys::jwt::parse(text) {
        let _ = supakeys::jwt::hs256_verifies(&parsed, "fuzz-secret-of-at-least-32-characters!!");
    }
});
