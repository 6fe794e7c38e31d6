//! Archive record decoding on any bytes (what a damaged database could hold): an error or a
//! record, never a panic; a decoded record encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store::record::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode(data) {
        let again = decode(&encode(&r)).expect("an encoded record decodes");
        assert_eq!(format!("{again:?}"), format!("{r:?}"));
    }
});
