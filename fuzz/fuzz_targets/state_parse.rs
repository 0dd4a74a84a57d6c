//! `state::State::parse` must refuse or accept any bytes without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = supakeys::state::State::parse(data, std::path::Path::new("state.json"), &|| None);
});
