//! The `patterns` fuzz target: what it feeds eddy and checks is in `src/targets/patterns.rs`,
//! where the seed replay test (`tests/seeds.rs`) runs the same checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| eddy_fuzz::targets::patterns::check(data));
