//! Run configuration parsing on any text: a configuration or an error naming what is wrong,
//! never a panic; an accepted configuration passes its own validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lab::config::RunConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match RunConfig::from_toml(text) {
        Ok(cfg) => cfg.validate().expect("an accepted configuration is valid"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
