//! The tokenizer on any text and any ids: encoding is one id per character and decodes back;
//! decoding and rendering arbitrary ids never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use problem::{Arith, Domain, Special};

fuzz_target!(|data: &[u8]| {
    let t = Arith.tokenizer(8);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ids) = t.encode(text) {
            assert_eq!(ids.len(), text.chars().count());
            assert_eq!(t.decode(&ids).expect("encoded ids decode"), text);
        }
    }
    let ids: Vec<u32> = data.chunks(2).map(|c| u32::from(c[0]) | u32::from(*c.get(1).unwrap_or(&0)) << 8).collect();
    let _ = t.decode(&ids);
    let _ = t.render(&ids);
    let (before, found) = t.until(&ids, Special::Eos);
    assert!(before.len() <= ids.len());
    assert_eq!(found, ids.contains(&t.special(Special::Eos)));
});
