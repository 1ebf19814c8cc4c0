//! Integration tests of dl-eval against committed reference fixtures (pycocotools, scikit-learn).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod coco;
mod rotated;
mod sklearn;
