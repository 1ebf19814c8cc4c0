//! Integration tests of dl-nets against committed reference fixtures.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod detection_torchvision;
mod torchvision;
