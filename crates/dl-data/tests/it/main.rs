//! Integration tests of dl-data: readers and split on the real datasets of `cargo xtask data`, and
//! parsers fed arbitrary bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod fuzz;
mod preprocess_real;
mod real_data;
mod roundtrip;
