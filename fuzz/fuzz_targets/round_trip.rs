//! Decode, then re-encode as XML and JSON (both styles) and decode again.
//! The checks live in `src/lib.rs`, shared with `tests/fuzz_corpus.rs` in the main crate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // Compile the schemas before the first input, not during it.
        eaibus_fuzz::registry();
    },
    |data: &[u8]| {
        eaibus_fuzz::round_trip(data);
    }
);
