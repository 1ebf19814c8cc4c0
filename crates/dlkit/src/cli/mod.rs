//! Subcommands of the `dlkit` tool.
pub mod dataset;
pub mod evaluate;
pub mod model;
pub mod train;
