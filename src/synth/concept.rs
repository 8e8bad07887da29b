//! A concept: the clusters, mixing and column order drawn from a
//! `ClassificationSpec`, rows sampled from it, and drifted variants of it.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::{ClassificationSpec, GenError, STREAM_CONCEPT, STREAM_DRIFT, STREAM_ROWS};
use crate::model::Dataset;

/// One Gaussian cluster in the informative subspace.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cluster {
    /// The hypercube vertex: `true` = `+class_sep` on that axis.
    vertex: Vec<bool>,
    pub(super) centroid: Vec<f64>,
    /// `n_informative x n_informative`, row-major: a point is `z * A + centroid`.
    pub(super) transform: Vec<f64>,
}

/// A fitted "concept": everything needed to draw more rows from the same
/// distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    pub(super) spec: ClassificationSpec,
    /// Cluster `k` belongs to class `k % n_classes`, as in scikit-learn.
    pub(super) clusters: Vec<Cluster>,
    /// `n_informative x n_redundant`, row-major.
    redundant: Vec<f64>,
    /// Output column `j` holds generated feature `columns[j]` (scikit-learn
    /// shuffles columns too, so informative features are not all first).
    pub(super) columns: Vec<usize>,
}

fn random_vertex(rng: &mut ChaCha8Rng, dims: usize) -> Vec<bool> {
    (0..dims).map(|_| rng.random::<bool>()).collect()
}

fn uniform_matrix(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

impl Cluster {
    fn draw(vertex: Vec<bool>, class_sep: f64, rng: &mut ChaCha8Rng) -> Cluster {
        let d = vertex.len();
        let centroid = vertex
            .iter()
            .map(|&b| if b { class_sep } else { -class_sep })
            .collect();
        Cluster {
            vertex,
            centroid,
            transform: uniform_matrix(rng, d * d),
        }
    }
}

/// Draws random vertices not yet in `taken` (adding them). The caller
/// guarantees that enough free vertices exist, so the loop terminates; it is
/// fast because clusters are few compared to the vertices.
fn distinct_vertices(
    rng: &mut ChaCha8Rng,
    dims: usize,
    count: usize,
    taken: &mut HashSet<Vec<bool>>,
) -> Vec<Vec<bool>> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let v = random_vertex(rng, dims);
        if taken.insert(v.clone()) {
            out.push(v);
        }
    }
    out
}

/// Balanced cluster counts for `n` rows: equal shares, the remainder one
/// each to the first clusters (scikit-learn's rule for equal weights).
fn cluster_counts(n: usize, clusters: usize) -> Vec<usize> {
    (0..clusters)
        .map(|k| n / clusters + usize::from(k < n % clusters))
        .collect()
}

impl Concept {
    /// Draws centroids, covariance transforms, the redundant mixing matrix
    /// and the column order from `spec.seed`.
    ///
    /// # Panics
    /// If the spec is invalid; use [`Concept::try_new`] to get the error.
    pub fn new(spec: &ClassificationSpec) -> Self {
        Self::try_new(spec).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_new(spec: &ClassificationSpec) -> Result<Self, GenError> {
        spec.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(STREAM_CONCEPT);
        let d = spec.n_informative;
        let vertices = distinct_vertices(&mut rng, d, spec.n_clusters(), &mut HashSet::new());
        let clusters = vertices
            .into_iter()
            .map(|v| Cluster::draw(v, spec.class_sep, &mut rng))
            .collect();
        let redundant = uniform_matrix(&mut rng, d * spec.n_redundant);
        let mut columns: Vec<usize> = (0..spec.n_features).collect();
        columns.shuffle(&mut rng);
        Ok(Concept {
            spec: spec.clone(),
            clusters,
            redundant,
            columns,
        })
    }

    pub fn spec(&self) -> &ClassificationSpec {
        &self.spec
    }

    /// Number of feature columns of the rows it draws.
    pub fn width(&self) -> usize {
        self.spec.n_features
    }

    /// `n` rows, classes balanced (clusters equally within a class), in
    /// random order, with `flip_y` label noise.
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Dataset {
        let mut order: Vec<usize> = cluster_counts(n, self.clusters.len())
            .into_iter()
            .enumerate()
            .flat_map(|(k, c)| std::iter::repeat_n(k, c))
            .collect();
        // Drawing rows in shuffled cluster order is the same distribution as
        // scikit-learn's generate-then-shuffle, without a second copy.
        order.shuffle(rng);
        let mut data = Dataset::new(self.width());
        data.features.reserve(n * self.width());
        data.labels.reserve(n);
        let mut buf = RowBuf::new(&self.spec);
        for k in order {
            let label = self.draw_row(k, rng, &mut buf);
            data.push_row(&buf.out, label);
        }
        data
    }

    /// One row of cluster `k` into `buf.out`; returns its label.
    pub(super) fn draw_row(&self, k: usize, rng: &mut ChaCha8Rng, buf: &mut RowBuf) -> i64 {
        let s = &self.spec;
        let d = s.n_informative;
        let cluster = &self.clusters[k];
        for z in buf.z.iter_mut() {
            *z = rng.sample(StandardNormal);
        }
        let (informative, rest) = buf.generated.split_at_mut(d);
        let (redundant, noise) = rest.split_at_mut(s.n_redundant);
        for (j, x) in informative.iter_mut().enumerate() {
            *x = cluster.centroid[j]
                + (0..d)
                    .map(|i| buf.z[i] * cluster.transform[i * d + j])
                    .sum::<f64>();
        }
        for (j, x) in redundant.iter_mut().enumerate() {
            *x = (0..d)
                .map(|i| informative[i] * self.redundant[i * s.n_redundant + j])
                .sum();
        }
        for x in noise.iter_mut() {
            *x = rng.sample(StandardNormal);
        }
        for (out, &src) in buf.out.iter_mut().zip(&self.columns) {
            *out = buf.generated[src] as f32;
        }
        // Both draws happen on every row so that flip_y changes labels only,
        // never the features of later rows.
        let flip = rng.random::<f64>() < s.flip_y;
        let random_class = rng.random_range(0..s.n_classes);
        let class = if flip { random_class } else { k % s.n_classes };
        class as i64
    }

    /// A drifted concept: `magnitude` in (0, 1] is the fraction of clusters
    /// (rounded, at least one; out-of-range values are clamped) that are
    /// re-drawn: a new centroid on a hypercube vertex no old cluster used
    /// (when enough are free) and a new covariance transform. 1.0 is a
    /// completely new concept over the same features (the redundant mixing
    /// and column order are kept). `seed` decides which and where.
    pub fn drifted(&self, magnitude: f64, seed: u64) -> Concept {
        let n = self.clusters.len();
        let m = if magnitude.is_nan() {
            1.0
        } else {
            magnitude.clamp(0.0, 1.0)
        };
        let count = ((m * n as f64).round() as usize).clamp(1, n);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(STREAM_DRIFT);
        let mut chosen = rand::seq::index::sample(&mut rng, n, count).into_vec();
        chosen.sort_unstable();
        let d = self.spec.n_informative;
        let free = if d >= 64 {
            usize::MAX
        } else {
            usize::try_from(1u64 << d).unwrap_or(usize::MAX) - n
        };
        // Prefer vertices no old cluster used so each re-drawn centroid
        // really moves; in a tiny space fall back to those the kept
        // clusters leave (which may swap clusters between classes).
        let mut taken: HashSet<Vec<bool>> = self
            .clusters
            .iter()
            .enumerate()
            .filter(|(k, _)| free >= count || !chosen.contains(k))
            .map(|(_, c)| c.vertex.clone())
            .collect();
        let vertices = distinct_vertices(&mut rng, d, count, &mut taken);
        let mut clusters = self.clusters.clone();
        for (&k, v) in chosen.iter().zip(vertices) {
            clusters[k] = Cluster::draw(v, self.spec.class_sep, &mut rng);
        }
        Concept {
            spec: self.spec.clone(),
            clusters,
            redundant: self.redundant.clone(),
            columns: self.columns.clone(),
        }
    }
}

/// Scratch space for one row, reused across rows.
pub(super) struct RowBuf {
    z: Vec<f64>,
    generated: Vec<f64>,
    pub(super) out: Vec<f32>,
}

impl RowBuf {
    pub(super) fn new(spec: &ClassificationSpec) -> Self {
        RowBuf {
            z: vec![0.0; spec.n_informative],
            generated: vec![0.0; spec.n_features],
            out: vec![0.0; spec.n_features],
        }
    }
}

/// Like scikit-learn's `make_classification` (with `shuffle=True`):
/// `spec.n_samples` rows.
///
/// # Panics
/// If the spec is invalid (see [`ClassificationSpec::validate`]).
pub fn make_classification(spec: &ClassificationSpec) -> Dataset {
    let concept = Concept::new(spec);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    rng.set_stream(STREAM_ROWS);
    concept.sample(spec.n_samples, &mut rng)
}

#[cfg(test)]
#[path = "concept_tests.rs"]
mod tests;
