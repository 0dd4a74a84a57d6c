//! `envfile::DotEnv::parse` on arbitrary text; whatever it accepts, a value without quotes,
//! backslashes or newlines must survive `render` and a second parse.
#![no_main]
use libfuzzer_sys::fuzz_target;
use supakeys::envfile::{DotEnv, render};

fuzz_target!(|text: &str| {
    let _ = DotEnv::parse(text);
    let value: String = text
        .chars()
        .filter(|c| !matches!(c, '\'' | '\\' | '\n' | '\r' | '\0'))
        .collect();
    let out = render("fuzz", &[("VALUE", &value)]);
    let env = DotEnv::parse(std::str::from_utf8(&out).unwrap()).unwrap();
    assert_eq!(env.get("VALUE"), Some(value.as_str()));
});
