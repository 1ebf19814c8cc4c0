//! Integration tests of the `dlkit` command-line tool.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod anomaly;
mod dataset_cli;
mod detection;
mod detection_real;
mod evaluate_cli;
mod export;
mod fuzz;
mod model_cli;
mod model_v1;
mod pretrained;
mod segmentation;
mod training;
