//! `kong::Template::parse` on arbitrary text, and `render` of whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use supakeys::kong::{Template, Values};

fuzz_target!(|text: &str| {
    if let Ok(template) = Template::parse("fuzz.yml", text) {
        let _ = template.render(&Values {
            anon_key: "ANON",
            service_key: "SERVICE",
            publishable_key: "sb_publishable_P",
            secret_key: "sb_secret_S",
            anon_asymmetric: "ANON_ES",
            service_asymmetric: "SERVICE_ES",
            extra_anon: Some("LEGACY_ANON"),
            extra_service: None,
            dashboard_username: Some("user"),
            dashboard_password: Some("pass"),
            jwt_issuer: Some("https://example.com/auth/v1"),
        });
    }
});
