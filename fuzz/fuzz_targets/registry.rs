//! meta.json, live.json, history.jsonl, broken.json, pins.json and the
//! ingest manifest: the first byte picks the file of a real registry that
//! the rest replaces, then the registry is opened and checked as the
//! daemon does at start.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = driftd::harness::registry_file(data);
});
