//! Subcommands of the `dlkit` tool.
pub mod anomaly;
pub mod dataset;
pub mod detection;
pub mod evaluate;
pub mod model;
pub mod segmentation;
pub mod train;
