//! `dlkit train`: train a model on a dataset (train_dl_model) with progress, curves, log and model files.

use anyhow::{Context, Result, bail};
use clap::Args;
use dlkit::Model;
use dlkit::data::{DLDataset, HostImage};
use dlkit::train::{ChangeStrategy, SerializationStrategy, StartEpoch, TrainParam, train_dl_model};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The dataset, split into train and validation (raw, or preprocessed to the model's size).
    #[arg(long)]
    dataset: PathBuf,
    /// Start from this model file …
    #[arg(long, conflicts_with = "create")]
    model: Option<PathBuf>,
    /// … or create one: compact | enhanced | resnet18 | resnet50 | mobilenet_v2 | efficientnet_lite0/1/2
    /// | squeezenet | mobilenet_v1 (classes from the dataset; for a detection or segmentation dataset
    /// the backbone, which may also be a pretrained_dl_classifier_… name) …
    #[arg(long, conflicts_with = "pretrained")]
    create: Option<String>,
    /// With --create: classification | detection | segmentation | patchcore | anomaly_detection |
    /// gc_anomaly_detection (the last three on a pretrained backbone; default: what the dataset's
    /// samples hold, patchcore for anomaly datasets).
    #[arg(long = "type")]
    model_type: Option<String>,
    /// With --create and a detection dataset: the detector's parameters.
    #[command(flatten)]
    detection: super::detection::DetectionArgs,
    /// With --create and a segmentation dataset: the segmentation model's parameters.
    #[command(flatten)]
    segmentation: super::segmentation::SegmentationArgs,
    /// Anomaly detection: PatchCore's parameters (with --create) and nok train images.
    #[command(flatten)]
    anomaly: super::anomaly::AnomalyArgs,
    /// … or start from pretrained ImageNet weights (`cargo xtask weights`):
    /// pretrained_dl_classifier_efficientnet_lite0 | …_efficientnet_lite1 | …_efficientnet_lite2 |
    /// …_squeezenet | …_mobilenet_v1 | …_mobilenet_v2, with a new head for the dataset's classes.
    #[arg(long, conflicts_with = "model")]
    pretrained: Option<String>,
    /// Fine-tune only the classification head (the backbone's weights stay).
    #[arg(long)]
    freeze_backbone: bool,
    /// Fine-tune the backbone with the learning rate times this factor (0 … 1; the head: the full rate).
    #[arg(long)]
    backbone_lr_factor: Option<f64>,
    /// With --create: network input width (default: the preprocessed size, else the first image's).
    #[arg(long)]
    width: Option<usize>,
    /// With --create: network input height.
    #[arg(long)]
    height: Option<usize>,
    /// With --create: network input channels.
    #[arg(long)]
    channels: Option<usize>,
    /// Number of epochs (default 10, or the --train-param file's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Learning rate (model parameter learning_rate).
    #[arg(long)]
    lr: Option<f64>,
    /// Multiply the learning rate by --lr-factor at these epochs (e.g. 6,9).
    #[arg(long, value_delimiter = ',')]
    lr_steps: Vec<f64>,
    /// Factor of each --lr-steps step.
    #[arg(long, default_value_t = 0.1)]
    lr_factor: f64,
    /// sgd | adam.
    #[arg(long)]
    solver: Option<String>,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f64>,
    /// L2 regularisation (weight_prior).
    #[arg(long)]
    weight_prior: Option<f64>,
    /// Images per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Batches accumulated per step.
    #[arg(long)]
    batch_size_multiplier: Option<usize>,
    /// Augmentation, HALCON's keys: e.g. "augmentation_percentage=50,mirror=c,brightness_variation=20".
    #[arg(long)]
    augment: Option<String>,
    /// Average the weights: an exponential moving average with this decay (e.g. 0.99), warmed up over
    /// the first steps; validation and the model files use the average (default off, or the
    /// --train-param file's).
    #[arg(long)]
    ema_decay: Option<f64>,
    /// Evaluate on the validation split every N epochs and after the last (default 1, or the
    /// --train-param file's).
    #[arg(long)]
    eval_interval: Option<usize>,
    /// Model files to write: best, final, current, epochs:N, comma-separated (default best,final, or
    /// the --train-param file's).
    #[arg(long, value_delimiter = ',')]
    serialize: Vec<String>,
    /// Seed of the epoch orders, augmentation and (with --create) the initial weights (default 42, or
    /// the --train-param file's).
    #[arg(long)]
    seed: Option<u64>,
    /// A train-parameter JSON file (create_dl_train_param's keys); flags given explicitly override it,
    /// flags left out keep its values.
    #[arg(long)]
    train_param: Option<PathBuf>,
    /// Output folder: model files, training_log.json, training_curves.png, checkpoint.dlc (default
    /// training/, or the --train-param file's output_dir).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in --out (same dataset, model and parameters as before).
    #[arg(long)]
    resume: bool,
    /// Device: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn parse_augment(text: &str) -> Result<dlkit::data::preprocess::AugmentParams> {
    let mut map = Map::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair.split_once('=').with_context(|| format!("--augment: `{pair}` is not key=value"))?;
        let v = v.trim();
        let value: Value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        // Each key alone first, so an error names it.
        serde_json::from_value::<dlkit::data::preprocess::AugmentParams>(json!({ k.trim(): value.clone() }))
            .with_context(|| format!("--augment {}={v}", k.trim()))?;
        map.insert(k.trim().to_owned(), value);
    }
    let params: dlkit::data::preprocess::AugmentParams =
        serde_json::from_value(Value::Object(map)).context("--augment")?;
    params.validate().context("--augment")?;
    Ok(params)
}

fn parse_serialize(items: &[String]) -> Result<Vec<SerializationStrategy>> {
    items
        .iter()
        .map(|s| {
            Ok(match s.trim() {
                "best" => SerializationStrategy::Best,
                "final" => SerializationStrategy::Final,
                "current" => SerializationStrategy::Current,
                other => match other.strip_prefix("epochs:").map(str::parse::<usize>) {
                    Some(Ok(every)) if every > 0 => SerializationStrategy::Epochs { every },
                    _ => bail!("--serialize: `{other}`: expected best, final, current or epochs:N"),
                },
            })
        })
        .collect()
}

fn create_model(args: &TrainArgs, arch: &str, ds: &DLDataset) -> Result<Model> {
    let names = ds.class_names.clone();
    let ids: Vec<i64> = ds.class_ids.iter().map(|c| i64::from(c.get())).collect();
    let (w, h, c) = match (&ds.preprocess_param, args.width, args.height, args.channels) {
        (Some(p), None, None, None) => (p.image_width, p.image_height, p.image_num_channels),
        (Some(_), ..) => bail!(
            "the dataset is preprocessed: its size is the model's, leave out --width/--height/--channels"
        ),
        (None, Some(w), Some(h), c) => (w, h, c.unwrap_or(3)),
        (None, None, None, c) => {
            let first = ds.samples.first().context("the dataset has no samples")?;
            let path = Path::new(&ds.image_dir).join(&first.image_file_name);
            let img = HostImage::read(&path)?;
            (img.width, img.height, c.unwrap_or(img.channels))
        }
        _ => bail!("give both --width and --height"),
    };
    tch::manual_seed((args.seed.unwrap_or(42) & 0x7fff_ffff_ffff_ffff) as i64);
    let model_type = match args.model_type.as_deref() {
        Some(t) if super::anomaly::ANOMALY_TYPES.contains(&t) => dlkit::data::ModelType::AnomalyDetection,
        Some(t) => t.parse::<dlkit::data::ModelType>().map_err(anyhow::Error::msg)?,
        None => ds
            .samples
            .iter()
            .find_map(dlkit::data::ModelType::infer)
            .unwrap_or(dlkit::data::ModelType::Classification),
    };
    let mut model = match model_type {
        dlkit::data::ModelType::Classification => Model::create_classifier(arch, &names, &ids, w, h, c)?,
        dlkit::data::ModelType::Detection => {
            let default = super::detection::instance_type_of(ds);
            Model::create_detector(arch, &names, &ids, (w, h, c), &args.detection.options(default)?)?
        }
        dlkit::data::ModelType::Segmentation => Model::create_segmenter(
            arch,
            None,
            &names,
            &ids,
            (w, h, c),
            &args.segmentation.options(Some(ds))?,
        )?,
        dlkit::data::ModelType::AnomalyDetection => {
            // The pretrained backbones take 3 channels; gray images are replicated.
            let c = if args.channels.is_none() { 3 } else { c };
            let kind = args.model_type.as_deref().unwrap_or("patchcore");
            super::anomaly::create(kind, arch, (w, h, c), &args.anomaly)?.0
        }
    };
    if let Some(p) = &ds.preprocess_param {
        model.set_preprocess_param(p.clone())?;
    }
    Ok(model)
}

pub fn run_train(args: &TrainArgs, json_out: bool) -> Result<u8> {
    let ds = DLDataset::load(&args.dataset)?;
    let mut model = match (&args.model, &args.create, &args.pretrained) {
        (Some(path), None, None) => {
            Model::read(path).with_context(|| format!("cannot read the model {}", path.display()))?
        }
        (None, Some(arch), None) => create_model(args, arch, &ds)?,
        (None, None, Some(name)) => {
            let ids: Vec<i64> = ds.class_ids.iter().map(|c| i64::from(c.get())).collect();
            tch::manual_seed((args.seed.unwrap_or(42) & 0x7fff_ffff_ffff_ffff) as i64);
            Model::create_pretrained(name, Some((&ds.class_names, &ids)))?
        }
        _ => bail!("give one of --model FILE, --create ARCH or --pretrained NAME"),
    };
    if args.freeze_backbone {
        model.set_param("freeze_backbone", &json!(true))?;
    }
    for (name, value) in [
        ("learning_rate", args.lr.map(|v| json!(v))),
        ("solver_type", args.solver.as_ref().map(|v| json!(v))),
        ("momentum", args.momentum.map(|v| json!(v))),
        ("weight_prior", args.weight_prior.map(|v| json!(v))),
        ("batch_size", args.batch_size.map(|v| json!(v))),
        ("batch_size_multiplier", args.batch_size_multiplier.map(|v| json!(v))),
        ("backbone_learning_rate_factor", args.backbone_lr_factor.map(|v| json!(v))),
    ] {
        if let Some(v) = value {
            model.set_param(name, &v)?;
        }
    }
    model.set_param("device", &json!(args.device))?;
    // PatchCore is fitted in one pass; the student of `anomaly_detection` trains like every model.
    let student = match model.get_param("anomaly_method") {
        Ok(method) if method == "patchcore" => {
            let out = args.out.clone().unwrap_or_else(|| PathBuf::from("training"));
            super::anomaly::fit(&mut model, &ds, &args.anomaly, &out, args.seed.unwrap_or(42), json_out)?;
            return Ok(0);
        }
        Ok(_) => {
            model.prepare_anomaly_training(args.anomaly.domain_ratio, args.anomaly.regularization_noise)?;
            true
        }
        Err(_) => false,
    };
    let mut param: TrainParam = match &args.train_param {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
        .with_context(|| format!("{}: not a train parameter file", path.display()))?,
        None => TrainParam::default(),
    };
    // Flags given explicitly override the file; without a file, the flags' defaults apply.
    let from_file = args.train_param.is_some();
    let or_default = |v: Option<usize>, default: usize, current: usize| {
        v.unwrap_or(if from_file { current } else { default })
    };
    param.num_epochs = or_default(args.epochs, 10, param.num_epochs);
    param.evaluation_interval_epochs = or_default(args.eval_interval, 1, param.evaluation_interval_epochs);
    param.seed = args.seed.unwrap_or(if from_file { param.seed } else { 42 });
    match &args.out {
        Some(out) => param.output_dir.clone_from(out),
        None if !from_file => param.output_dir = PathBuf::from("training"),
        None => {}
    }
    if !args.serialize.is_empty() {
        param.serialization_strategies = parse_serialize(&args.serialize)?;
    } else if !from_file {
        // An anomaly model compares epochs only on a validation split with ok and nok images.
        param.serialization_strategies = if !student || dlkit::train::validation_holds_ok_and_nok(&ds) {
            vec![SerializationStrategy::Best, SerializationStrategy::Final]
        } else {
            vec![SerializationStrategy::Final]
        };
    }
    if student {
        param.error_threshold = Some(
            args.anomaly
                .error_threshold
                .or(if from_file { param.error_threshold } else { None })
                .unwrap_or(dlkit::AnomalyTrainParam::default().error_threshold),
        );
        param.skip_nok_train |= args.anomaly.skip_nok_train;
    }
    param.display = !json_out;
    if let Some(a) = &args.augment {
        param.augmentation = Some(parse_augment(a)?);
    }
    if let Some(d) = args.ema_decay {
        param.ema_decay = Some(d);
    }
    if !args.lr_steps.is_empty() {
        let lr = model.get_param("learning_rate")?.as_f64().context("learning_rate")?;
        param.change_strategies.retain(|s| s.model_param != "learning_rate");
        param.change_strategies.push(ChangeStrategy::learning_rate_steps(lr, args.lr_factor, &args.lr_steps));
    }
    let start = if args.resume { StartEpoch::Resume } else { StartEpoch::Fresh };
    if !json_out {
        println!(
            "training {} ({} parameters) on {} for {} epoch{} → {}",
            serde_json::to_value(model.description().architecture())?["architecture"]
                .as_str()
                .unwrap_or("model"),
            model.num_trainable_params(),
            args.dataset.display(),
            param.num_epochs,
            if param.num_epochs == 1 { "" } else { "s" },
            param.output_dir.display()
        );
    }
    let log = train_dl_model(&ds, &mut model, &param, start)?;
    let files = dlkit::train::TrainFiles::new(&param.output_dir);
    let last_epoch = log.epochs.last().map_or(0, |e| e.epoch);
    if student {
        let mut written: Vec<PathBuf> = param
            .serialization_strategies
            .iter()
            .map(|s| files.model(s, last_epoch))
            .filter(|p| p.is_file())
            .collect();
        written.dedup();
        super::anomaly::store_thresholds_in_files(&ds, &written, json_out)?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&log)?);
    } else {
        if let Some(b) = &log.best {
            println!("best validation {} {:.2}% after epoch {}", log.measure, 100.0 * b.value, b.epoch);
        }
        if let Some(last) = log.epochs.last() {
            println!(
                "final loss {:.4}, {} steps, {:.1} s of training",
                last.mean_loss, last.iterations, log.seconds
            );
        }
        println!("log → {}, curves → {}", files.log().display(), files.curves().display());
        for s in &param.serialization_strategies {
            let path = files.model(s, log.epochs.last().map_or(0, |e| e.epoch));
            if path.exists() {
                println!("model → {}", path.display());
            }
        }
    }
    Ok(0)
}
