//! The `dlkit` command-line tool.

/// `println!` for the whole tool: a closed pipe (`dlkit … --json | head`) ends the program quietly with
/// exit code 0 instead of panicking; other write errors are reported by the caller's next write.
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod cli;

use clap::{Parser, Subcommand};

/// dlkit: datasets in, trained and evaluated models out, in HALCON's vocabulary.
#[derive(Debug, Parser)]
#[command(
    name = "dlkit",
    version,
    about = "dlkit: deep learning for industrial machine vision — datasets in, trained and evaluated models out, in HALCON's vocabulary."
)]
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
    /// Work with DLDataset files: read, split, info, validate, export-coco.
    #[command(subcommand)]
    Dataset(cli::dataset::DatasetCommand),
    /// Evaluate a model on a dataset, or results files: detections (COCO), classification, segmentation, anomaly.
    #[command(subcommand)]
    Evaluate(cli::evaluate::EvaluateCommand),
    /// Train a model on a dataset: progress bar, validation, model files, log and curves.
    Train(Box<cli::train::TrainArgs>),
    /// Create, inspect and change model files.
    #[command(subcommand)]
    Model(cli::model::ModelCommand),
    /// Heatmap of one image (grad_cam, guided_grad_cam or occlusion), written as a jet overlay PNG.
    Heatmap {
        /// The model file.
        #[arg(long)]
        model: std::path::PathBuf,
        /// The image.
        image: std::path::PathBuf,
        /// grad_cam | guided_grad_cam | occlusion.
        #[arg(long, default_value = "grad_cam")]
        method: String,
        /// Class id to explain (default: the top class).
        #[arg(long)]
        class: Option<i64>,
        /// The PNG to write.
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
    /// Classify images with a model (results as DLResults).
    Apply {
        /// The model file.
        #[arg(long)]
        model: std::path::PathBuf,
        /// Images to classify.
        #[arg(required = true)]
        images: Vec<std::path::PathBuf>,
        /// Write each image with its top classes as `<stem>_result.png` into this folder.
        #[arg(long)]
        overlay: Option<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
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
            Ok(0)
        }
        Command::Dataset(command) => cli::dataset::run(command, cli.json),
        Command::Evaluate(command) => cli::evaluate::run(command, cli.json),
        Command::Model(command) => cli::model::run_model(command, cli.json),
        Command::Train(args) => cli::train::run_train(args, cli.json),
        Command::Apply { model, images, overlay } => {
            cli::model::run_apply(model, images, overlay.as_deref(), cli.json)
        }
        Command::Heatmap { model, image, method, class, output } => {
            cli::model::run_heatmap(model, image, method, *class, output, cli.json)
        }
    }
}
