//! Test support shared by the dlkit crates and `xtask`: where the real data lives, float comparison,
//! the peak memory the benches report.
//!
//! Real datasets are fetched and converted by `cargo xtask data` into a per-user cache shared by every
//! clone of the repository. [`cache_root`] and [`data_dir`] resolve that location the same way for
//! `xtask` (which writes it) and for tests (which read it).

use std::path::PathBuf;

/// The per-user dlkit cache: `$DLKIT_CACHE`, else `$XDG_CACHE_HOME/dlkit`, else `$HOME/.cache/dlkit`,
/// else `.dlkit/cache` in the current directory (one definition, in dl-io, for xtask, tests and dlkit).
pub use dl_io::cache_root;

/// The process's peak resident memory in MiB (`VmHWM` of `/proc/self/status`; NaN where unavailable),
/// as the benches report it.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Folder holding the converted real datasets (`<cache_root>/data`).
pub fn data_root() -> PathBuf {
    cache_root().join("data")
}

/// Name of the file `cargo xtask data` writes last into a finished dataset folder.
pub const DATA_STAMP: &str = ".dlkit-complete";

/// The folder of the converted real dataset `name` (`fashion-mnist`, `mnist5k`, `elpv`, `deepforest`,
/// `labelme`), for integration tests.
///
/// # Panics
/// When the dataset has not been fetched, with a message naming the command that fetches it: a test on
/// real data must fail loudly, not pass vacuously.
pub fn data_dir(name: &str) -> PathBuf {
    let dir = data_root().join(name);
    assert!(
        dir.join(DATA_STAMP).is_file(),
        "real dataset `{name}` is missing at {}: run `cargo xtask data {name}` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// An experiment knob of a long test: the environment variable `name` parsed as `T`, or `default` when
/// it is unset.
///
/// # Panics
/// When it is set but does not parse, naming it: a mistyped knob must not measure the default run.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} does not parse")),
        Err(_) => default,
    }
}

/// The converted pretrained weights `name` (`efficientnet_lite0`, `…1`, `…2`, `mobilenet_v2`) made by
/// `cargo xtask weights`, for integration tests.
///
/// # Panics
/// When they have not been fetched, naming the command that fetches them.
pub fn weights_path(name: &str) -> PathBuf {
    let path = cache_root().join("weights").join(format!("{name}.safetensors"));
    assert!(
        path.is_file(),
        "pretrained weights `{name}` are missing at {}: run `cargo xtask weights {name}` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// Asserts that two floats (or two slices of floats) agree within an absolute tolerance.
///
/// ```
/// dl_testkit::assert_close!(0.1 + 0.2, 0.3, 1e-12);
/// dl_testkit::assert_close!(&[1.0f32, 2.0][..], &[1.0f32, 2.000001][..], 1e-5);
/// ```
#[macro_export]
macro_rules! assert_close {
    ($left:expr, $right:expr, $tol:expr $(,)?) => {
        $crate::assert_close_impl(&$left, &$right, $tol as f64, file!(), line!())
    };
}

/// Values [`assert_close!`] compares.
pub trait CloseTo {
    /// The values as f64, in order.
    fn values(&self) -> Vec<f64>;
}

impl CloseTo for f64 {
    fn values(&self) -> Vec<f64> {
        vec![*self]
    }
}
impl CloseTo for f32 {
    fn values(&self) -> Vec<f64> {
        vec![f64::from(*self)]
    }
}
impl CloseTo for [f64] {
    fn values(&self) -> Vec<f64> {
        self.to_vec()
    }
}
impl CloseTo for [f32] {
    fn values(&self) -> Vec<f64> {
        self.iter().map(|&v| f64::from(v)).collect()
    }
}
impl<T: CloseTo + ?Sized> CloseTo for &T {
    fn values(&self) -> Vec<f64> {
        (**self).values()
    }
}
impl CloseTo for Vec<f64> {
    fn values(&self) -> Vec<f64> {
        self.clone()
    }
}
impl CloseTo for Vec<f32> {
    fn values(&self) -> Vec<f64> {
        self.as_slice().values()
    }
}

/// Implementation of [`assert_close!`].
///
/// # Panics
/// When the lengths differ, a value is NaN on one side only, or a pair differs by more than `tol`.
#[track_caller]
pub fn assert_close_impl<L: CloseTo + ?Sized, R: CloseTo + ?Sized>(
    left: &L,
    right: &R,
    tol: f64,
    file: &str,
    line: u32,
) {
    let (l, r) = (left.values(), right.values());
    assert_eq!(l.len(), r.len(), "{file}:{line}: lengths differ");
    for (i, (a, b)) in l.iter().zip(&r).enumerate() {
        let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol || a == b;
        assert!(same, "{file}:{line}: element {i}: {a} vs {b} differ by more than {tol}");
    }
}

/// Why two sequences of numbers could not be compared value by value.
#[derive(Debug, Clone, PartialEq)]
pub enum Disagreement {
    /// The sequences have different lengths (left, right).
    Lengths(usize, usize),
    /// A value is NaN (or the difference is): its index and both values.
    NaN {
        /// Position in both sequences.
        index: usize,
        /// The left-hand value there.
        left: f64,
        /// The right-hand value there.
        right: f64,
    },
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lengths(l, r) => write!(f, "lengths differ: {l} values vs {r}"),
            Self::NaN { index, left, right } => write!(f, "NaN at element {index}: {left} vs {right}"),
        }
    }
}

impl std::error::Error for Disagreement {}

/// The largest |a − b| over two equally long sequences; an error when the lengths differ or any value
/// is NaN (a NaN output is a broken output, never "no difference"). Empty sequences give 0.
///
/// ```
/// use dl_testkit::{try_max_abs_diff, Disagreement};
/// assert_eq!(try_max_abs_diff(&[1.0, 2.0][..], &[1.5, 2.0][..]), Ok(0.5));
/// assert_eq!(try_max_abs_diff(&[1.0][..], &[1.0, 2.0][..]), Err(Disagreement::Lengths(1, 2)));
/// assert!(try_max_abs_diff(&[f64::NAN][..], &[f64::NAN][..]).is_err());
/// ```
pub fn try_max_abs_diff<L: CloseTo + ?Sized, R: CloseTo + ?Sized>(
    left: &L,
    right: &R,
) -> Result<f64, Disagreement> {
    max_scaled_diff(&left.values(), &right.values(), |_| 1.0)
}

/// The largest |a − b| / max(1, |b|) (relative where the right-hand value exceeds 1 in magnitude),
/// with the same failures as [`try_max_abs_diff`].
pub fn try_max_rel_diff<L: CloseTo + ?Sized, R: CloseTo + ?Sized>(
    left: &L,
    right: &R,
) -> Result<f64, Disagreement> {
    max_scaled_diff(&left.values(), &right.values(), |b| b.abs().max(1.0))
}

fn max_scaled_diff(l: &[f64], r: &[f64], scale: impl Fn(f64) -> f64) -> Result<f64, Disagreement> {
    if l.len() != r.len() {
        return Err(Disagreement::Lengths(l.len(), r.len()));
    }
    let mut worst = 0.0f64;
    for (index, (&a, &b)) in l.iter().zip(r).enumerate() {
        let d = (a - b).abs() / scale(b);
        if d.is_nan() {
            return Err(Disagreement::NaN { index, left: a, right: b });
        }
        worst = worst.max(d);
    }
    Ok(worst)
}

/// [`try_max_abs_diff`] for tests.
///
/// # Panics
/// When the lengths differ or a value is NaN.
#[track_caller]
pub fn max_abs_diff<L: CloseTo + ?Sized, R: CloseTo + ?Sized>(left: &L, right: &R) -> f64 {
    try_max_abs_diff(left, right).unwrap_or_else(|e| panic!("cannot compare: {e}"))
}

/// [`try_max_rel_diff`] for tests.
///
/// # Panics
/// When the lengths differ or a value is NaN.
#[track_caller]
pub fn max_rel_diff<L: CloseTo + ?Sized, R: CloseTo + ?Sized>(left: &L, right: &R) -> f64 {
    try_max_rel_diff(left, right).unwrap_or_else(|e| panic!("cannot compare: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "differ by more than")]
    fn assert_close_rejects_far_values() {
        assert_close!(1.0, 1.1, 1e-3);
    }

    #[test]
    fn max_abs_diff_fails_on_nan_and_length() {
        assert_eq!(try_max_abs_diff(&[1.0f32, -2.0][..], &[1.0f32, 1.0][..]), Ok(3.0));
        assert_eq!(try_max_abs_diff(&[0.0f64; 0][..], &[0.0f64; 0][..]), Ok(0.0));
        assert_eq!(try_max_abs_diff(&[1.0f64][..], &[0.0f64; 0][..]), Err(Disagreement::Lengths(1, 0)));
        // NaN anywhere, on either side or both, is a failure, even after a large difference.
        assert!(matches!(
            try_max_abs_diff(&[5.0, f64::NAN][..], &[0.0, 0.0][..]),
            Err(Disagreement::NaN { index: 1, .. })
        ));
        assert!(try_max_abs_diff(&[0.0][..], &[f64::NAN][..]).is_err());
        assert!(try_max_abs_diff(&[f64::NAN][..], &[f64::NAN][..]).is_err());
        assert!(try_max_abs_diff(&[f64::INFINITY][..], &[f64::INFINITY][..]).is_err());
        assert_eq!(try_max_rel_diff(&[110.0][..], &[100.0][..]), Ok(0.1));
        assert_eq!(try_max_rel_diff(&[0.5][..], &[0.25][..]), Ok(0.25));
    }

    #[test]
    #[should_panic(expected = "cannot compare: lengths differ")]
    fn max_abs_diff_panics_on_length() {
        let _ = max_abs_diff(&vec![1.0f64], &vec![1.0f64, 2.0]);
    }
}
