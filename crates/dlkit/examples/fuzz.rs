//! The fuzz runner of `cargo xtask fuzz`: seeded mutations of every parser and file format
//! (`dlkit::fuzz`), in release mode, with the cases per second; panicking inputs are saved under
//! `--crashes DIR` (default `fixtures/fuzz`), where a normal test replays them.
//!
//! usage: fuzz [--cases N] [--seed S] [--threads T] [--crashes DIR] [TARGET…] (default: every target)

use dlkit::fuzz::{TARGETS, fuzz};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut cases, mut seed, mut threads) = (1_000_000u64, 1u64, 2usize);
    let mut crashes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz");
    let mut targets = Vec::new();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--cases" => cases = value("--cases")?.parse()?,
            "--seed" => seed = value("--seed")?.parse()?,
            "--threads" => threads = value("--threads")?.parse()?,
            "--crashes" => crashes = PathBuf::from(value("--crashes")?),
            t => targets.push(t.to_owned()),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    tch::set_num_threads(1);
    println!(
        "{:<16} {:>10} {:>10} {:>9} {:>10} {:>8}",
        "target", "cases", "accepted", "seconds", "cases/s", "panics"
    );
    let mut found = 0;
    for t in &targets {
        let r = fuzz(t, cases, seed, threads, &crashes)?;
        println!(
            "{:<16} {:>10} {:>10} {:>9.1} {:>10.0} {:>8}",
            r.target,
            r.cases,
            r.accepted,
            r.seconds,
            r.cases as f64 / r.seconds,
            r.crashes.len()
        );
        for c in &r.crashes {
            println!("  saved {}", c.display());
        }
        found += r.crashes.len();
    }
    if found > 0 {
        return Err(format!(
            "{found} panicking inputs (saved; `cargo test -p dlkit --test it fuzz` replays them)"
        )
        .into());
    }
    Ok(())
}
