//! The `dlkit` command-line tool.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// dlkit: datasets in, trained and evaluated models out, in HALCON's vocabulary.
#[derive(Debug, Parser)]
#[command(name = "dlkit", version, about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the version, libtorch's threads and the CUDA devices found.
    Info,
    /// Work with DLDataset files.
    #[command(subcommand)]
    Dataset(DatasetCommand),
}

#[derive(Debug, Subcommand)]
enum DatasetCommand {
    /// Summarise a dataset file: samples per split and class.
    Info {
        /// The dataset JSON file.
        dataset: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Info => {
            let info = dlkit::BuildInfo::current();
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("dlkit {}", info.version);
                println!("libtorch CPU threads: {}", info.cpu_threads);
                println!(
                    "CUDA devices: {} (cuDNN {})",
                    info.cuda_devices,
                    if info.cudnn { "yes" } else { "no" }
                );
            }
        }
        Command::Dataset(DatasetCommand::Info { dataset }) => {
            let ds = dlkit::data::DLDataset::load(dataset)
                .with_context(|| "cannot read the dataset".to_string())?;
            dataset_info(&ds, cli.json)?;
        }
    }
    Ok(())
}

fn dataset_info(ds: &dlkit::data::DLDataset, json: bool) -> anyhow::Result<()> {
    use std::collections::BTreeMap;
    let mut per_split: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_class: BTreeMap<u16, usize> = BTreeMap::new();
    for s in &ds.samples {
        *per_split.entry(s.split.map_or("unsplit".into(), |x| x.to_string())).or_default() += 1;
        for id in s.image_label_id.iter().flatten().chain(s.bbox_label_id.iter().flatten()) {
            *per_class.entry(id.get()).or_default() += 1;
        }
    }
    let name_of = |id: u16| {
        ds.class_ids
            .iter()
            .position(|c| c.get() == id)
            .and_then(|i| ds.class_names.get(i))
            .cloned()
            .unwrap_or_default()
    };
    if json {
        let classes: Vec<_> = per_class
            .iter()
            .map(|(&id, &n)| serde_json::json!({"class_id": id, "class_name": name_of(id), "count": n}))
            .collect();
        let out =
            serde_json::json!({"num_samples": ds.samples.len(), "splits": per_split, "classes": classes});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("samples: {}", ds.samples.len());
        for (split, n) in &per_split {
            println!("  {split}: {n}");
        }
        println!("labels per class:");
        for (id, n) in &per_class {
            println!("  {id:>5} {:<20} {n}", name_of(*id));
        }
    }
    Ok(())
}
