//! Greedy k-center coreset selection, chunked: patches arrive in a stream, are gathered into chunks of
//! a bounded size, and each full chunk keeps its `ratio` share chosen greedily (start at a seeded
//! index, then repeatedly the patch farthest from those chosen; distances updated in parallel with
//! rayon). Memory is one chunk plus the kept patches, whatever the number of images; the result depends
//! only on the patches, their order, the chunk size, the ratio and the seed.

use rayon::prelude::*;

/// Streams patches (rows of `dim` values) into chunked k-center selection.
#[derive(Debug)]
pub struct CoresetBuilder {
    dim: usize,
    ratio: f64,
    chunk: usize,
    seed: u64,
    buffer: Vec<f32>,
    kept: Vec<f32>,
    seen: usize,
    chunks: u64,
    /// The largest distance of a patch to the nearest kept patch of its chunk, over the chunks.
    radius: f32,
}

impl CoresetBuilder {
    /// A builder for rows of `dim` values keeping `ratio` of each chunk of `chunk` rows.
    pub fn new(dim: usize, ratio: f64, chunk: usize, seed: u64) -> Self {
        Self {
            dim,
            ratio,
            chunk: chunk.max(1),
            seed,
            buffer: Vec::with_capacity(chunk.max(1) * dim),
            kept: Vec::new(),
            seen: 0,
            chunks: 0,
            radius: 0.0,
        }
    }

    /// Adds rows (row-major, a multiple of `dim` values).
    pub fn push(&mut self, rows: &[f32]) {
        let mut rest = rows;
        while !rest.is_empty() {
            let room = self.chunk * self.dim - self.buffer.len();
            let take = room.min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.seen += take / self.dim;
            if self.buffer.len() == self.chunk * self.dim {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let n = self.buffer.len() / self.dim;
        let k = ((n as f64 * self.ratio).ceil() as usize).clamp(1, n);
        let start = (dl_core::Rng::derived(self.seed, &[self.chunks]).next_u64() % n as u64) as usize;
        let (chosen, radius) = k_center(&self.buffer, self.dim, k, start);
        for i in chosen {
            self.kept.extend_from_slice(&self.buffer[i * self.dim..(i + 1) * self.dim]);
        }
        self.radius = self.radius.max(radius);
        self.buffer.clear();
        self.chunks += 1;
    }

    /// Rows seen so far.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The kept rows (row-major) and the coverage radius.
    pub fn finish(mut self) -> (Vec<f32>, f32) {
        self.flush();
        (self.kept, self.radius)
    }
}

/// Greedy k-center over `points` (rows of `dim`): the indices chosen, starting from `start`, and the
/// largest remaining distance of a point to its nearest chosen one.
pub fn k_center(points: &[f32], dim: usize, k: usize, start: usize) -> (Vec<usize>, f32) {
    let n = points.len() / dim;
    let mut min = vec![f32::INFINITY; n];
    let mut chosen = Vec::with_capacity(k);
    let mut current = start.min(n.saturating_sub(1));
    const BLOCK: usize = 2048;
    for _ in 0..k.min(n) {
        chosen.push(current);
        let c = &points[current * dim..(current + 1) * dim];
        min.par_chunks_mut(BLOCK).zip(points.par_chunks(BLOCK * dim)).for_each(|(m, rows)| {
            for (mi, row) in m.iter_mut().zip(rows.chunks_exact(dim)) {
                let d = squared_distance(row, c);
                if d < *mi {
                    *mi = d;
                }
            }
        });
        // The farthest point (the first on ties).
        let mut best = (0usize, f32::NEG_INFINITY);
        for (i, &d) in min.iter().enumerate() {
            if d > best.1 {
                best = (i, d);
            }
        }
        current = best.0;
    }
    let radius = min.iter().copied().fold(0.0f32, f32::max).sqrt();
    (chosen, radius)
}

/// Σ (a − b)² with eight independent accumulators (so that the compiler vectorises it).
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            let d = x[k] - y[k];
            acc[k] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// On two far-apart clusters, two centres cover both: one from each.
    #[test]
    fn picks_the_farthest_point_first() {
        let pts = [0.0f32, 0.0, 0.1, 0.0, 10.0, 10.0, 10.1, 10.0, 0.0, 0.2];
        let (c, r) = k_center(&pts, 2, 2, 0);
        assert_eq!(c, [0, 3]);
        assert!((r - 0.2).abs() < 1e-6, "{r}");
    }

    proptest! {
        /// The k-center radius is what brute force gives for the chosen set; chunking keeps
        /// ⌈ratio · chunk⌉ per chunk and is deterministic.
        #[test]
        fn radius_and_chunks(v in proptest::collection::vec(-5.0f32..5.0, 6..400), k in 1usize..6, seed in 0u64..4) {
            let dim = 3;
            let n = v.len() / dim;
            let pts = &v[..n * dim];
            let (chosen, r) = k_center(pts, dim, k, 0);
            let brute = (0..n).map(|i| {
                chosen.iter().map(|&j| (0..dim).map(|d| (pts[i * dim + d] - pts[j * dim + d]).powi(2)).sum::<f32>()).fold(f32::INFINITY, f32::min)
            }).fold(0.0f32, f32::max).sqrt();
            prop_assert!((r - brute).abs() < 1e-4);
            let mut b = CoresetBuilder::new(dim, 0.25, 10, seed);
            b.push(pts);
            let (kept, _) = b.finish();
            let expected: usize = (0..n).step_by(10).map(|s| (((n - s).min(10)) as f64 * 0.25).ceil() as usize).sum();
            prop_assert_eq!(kept.len(), expected * dim);
            let mut again = CoresetBuilder::new(dim, 0.25, 10, seed);
            for row in pts.chunks(dim) { again.push(row); }
            prop_assert_eq!(again.finish().0, kept);
        }
    }
}
