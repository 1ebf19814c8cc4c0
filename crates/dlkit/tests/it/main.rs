//! Integration tests of the `dlkit` command-line tool.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod dataset_cli;
mod evaluate_cli;
mod model_cli;
mod pretrained;
mod training;
