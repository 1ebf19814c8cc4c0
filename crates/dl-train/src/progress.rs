//! Progress bars (indicatif), hidden when not displayed.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps with a message slot, or a hidden one when `display` is false.
pub fn bar(len: u64, display: bool, prefix: &'static str) -> ProgressBar {
    if !display {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} elapsed, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}
