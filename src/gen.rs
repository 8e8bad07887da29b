//! Synthetic data: a scikit-learn style `make_classification`, drifted
//! concepts, and drifting streams written as Parquet files.
//!
//! Everything is driven by `ChaCha8Rng` seeded from the specs, so a spec
//! always yields bit-identical rows (for a given build of `rand`). Separate
//! ChaCha streams are used for the concept's parameters, its rows and the
//! drift seeds so that e.g. changing `flip_y` or `rows` never moves a
//! centroid.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::{
    Column, DataFrame, IntoColumn, NamedFrom, ParquetWriter, PolarsError, Series, TimeUnit,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::model::Dataset;

/// ChaCha stream ids: one per purpose, so the draws of one never shift another.
const STREAM_CONCEPT: u64 = 0;
const STREAM_ROWS: u64 = 1;
const STREAM_DRIFT: u64 = 2;
const STREAM_DRIFT_SEEDS: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Polars { path: PathBuf, source: PolarsError },
    #[error("invalid generator spec: {0}")]
    InvalidSpec(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GenError + '_ {
    move |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(msg: impl Into<String>) -> GenError {
    GenError::InvalidSpec(msg.into())
}

/// The parameters of scikit-learn's `make_classification` that driftd uses
/// (always `hypercube=True`, `shift=0`, `scale=1`, equal class weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationSpec {
    pub n_samples: usize,
    pub n_features: usize,
    pub n_informative: usize,
    pub n_redundant: usize,
    pub n_classes: usize,
    pub n_clusters_per_class: usize,
    pub class_sep: f64,
    /// Fraction of labels assigned at random (label noise).
    pub flip_y: f64,
    pub seed: u64,
}

impl ClassificationSpec {
    /// The tutorial's reference data set (scikit-learn's defaults for the
    /// parameters it does not name).
    pub fn reference(seed: u64) -> Self {
        ClassificationSpec {
            n_samples: 1000,
            n_features: 20,
            n_informative: 15,
            n_redundant: 5,
            n_classes: 2,
            n_clusters_per_class: 2,
            class_sep: 1.0,
            flip_y: 0.01,
            seed,
        }
    }

    /// `n_samples` is not checked: streams ignore it and zero rows is a
    /// valid (empty) data set.
    pub fn validate(&self) -> Result<(), GenError> {
        if self.n_features == 0 {
            return Err(invalid("n_features must be at least 1"));
        }
        if self.n_informative == 0 {
            return Err(invalid("n_informative must be at least 1"));
        }
        if self.n_informative.saturating_add(self.n_redundant) > self.n_features {
            return Err(invalid(format!(
                "n_informative ({}) + n_redundant ({}) must be at most n_features ({})",
                self.n_informative, self.n_redundant, self.n_features
            )));
        }
        if self.n_classes < 2 {
            return Err(invalid(format!(
                "n_classes is {}; a classifier needs at least 2",
                self.n_classes
            )));
        }
        if self.n_clusters_per_class == 0 {
            return Err(invalid("n_clusters_per_class must be at least 1"));
        }
        // Every cluster sits on its own hypercube vertex.
        let clusters = self.n_classes.checked_mul(self.n_clusters_per_class);
        let fits = match clusters {
            None => false,
            Some(c) => self.n_informative >= 64 || (c as u64) <= 1u64 << self.n_informative,
        };
        if !fits {
            return Err(invalid(format!(
                "n_classes ({}) * n_clusters_per_class ({}) must be at most 2^n_informative (n_informative = {})",
                self.n_classes, self.n_clusters_per_class, self.n_informative
            )));
        }
        if !self.class_sep.is_finite() || self.class_sep < 0.0 {
            return Err(invalid(format!(
                "class_sep is {}; it must be a finite number >= 0",
                self.class_sep
            )));
        }
        if !(0.0..=1.0).contains(&self.flip_y) {
            return Err(invalid(format!(
                "flip_y is {}; it must be in [0, 1]",
                self.flip_y
            )));
        }
        Ok(())
    }

    fn n_clusters(&self) -> usize {
        self.n_classes * self.n_clusters_per_class
    }
}

/// One Gaussian cluster in the informative subspace.
#[derive(Debug, Clone, PartialEq)]
struct Cluster {
    /// The hypercube vertex: `true` = `+class_sep` on that axis.
    vertex: Vec<bool>,
    centroid: Vec<f64>,
    /// `n_informative x n_informative`, row-major: a point is `z * A + centroid`.
    transform: Vec<f64>,
}

/// A fitted "concept": everything needed to draw more rows from the same
/// distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    spec: ClassificationSpec,
    /// Cluster `k` belongs to class `k % n_classes`, as in scikit-learn.
    clusters: Vec<Cluster>,
    /// `n_informative x n_redundant`, row-major.
    redundant: Vec<f64>,
    /// Output column `j` holds generated feature `columns[j]` (scikit-learn
    /// shuffles columns too, so informative features are not all first).
    columns: Vec<usize>,
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
    fn draw_row(&self, k: usize, rng: &mut ChaCha8Rng, buf: &mut RowBuf) -> i64 {
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
struct RowBuf {
    z: Vec<f64>,
    generated: Vec<f64>,
    out: Vec<f32>,
}

impl RowBuf {
    fn new(spec: &ClassificationSpec) -> Self {
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub rows: usize,
    /// `n_samples` is ignored.
    pub concept: ClassificationSpec,
    /// Row positions where the concept changes (strictly increasing).
    pub drift_at: Vec<usize>,
    /// 0 = abrupt; otherwise gradual: over `drift_width` rows starting at
    /// the drift point, each row comes from the new concept with probability
    /// rising linearly 0 -> 1.
    pub drift_width: usize,
    /// Passed to [`Concept::drifted`].
    pub drift_magnitude: f64,
    pub rows_per_file: usize,
    /// When `Some((start_unix_seconds, seconds_per_row))`, a `ts` column
    /// (Datetime(Microseconds, no time zone)) is written: row `r` is at
    /// `start + r * seconds_per_row`, so each file covers one interval of
    /// `rows_per_file * seconds_per_row` seconds.
    pub timestamps: Option<(i64, f64)>,
    /// Decides the rows, the transitions and the drifted concepts; the first
    /// concept comes from `concept.seed`.
    pub seed: u64,
}

impl StreamSpec {
    pub fn validate(&self) -> Result<(), GenError> {
        self.concept.validate()?;
        if self.rows == 0 {
            return Err(invalid("rows must be at least 1"));
        }
        if self.rows_per_file == 0 {
            return Err(invalid("rows_per_file must be at least 1"));
        }
        for (i, &d) in self.drift_at.iter().enumerate() {
            if d >= self.rows {
                return Err(invalid(format!(
                    "drift_at[{i}] = {d} is not a row of the stream (rows = {})",
                    self.rows
                )));
            }
            if let Some(&next) = self.drift_at.get(i + 1) {
                if d.saturating_add(self.drift_width) > next {
                    return Err(invalid(format!(
                        "drift_at[{i}] = {d} with drift_width {} overlaps the next drift at {next}; \
                         drift points must be increasing and at least drift_width apart",
                        self.drift_width
                    )));
                }
                if d == next {
                    return Err(invalid(format!("drift_at has {d} twice")));
                }
            }
        }
        // Written so that NaN is rejected too.
        let magnitude_ok = self.drift_magnitude > 0.0 && self.drift_magnitude <= 1.0;
        if !self.drift_at.is_empty() && !magnitude_ok {
            return Err(invalid(format!(
                "drift_magnitude is {}; it must be in (0, 1]",
                self.drift_magnitude
            )));
        }
        if let Some((start, step)) = self.timestamps {
            if !step.is_finite() || step <= 0.0 {
                return Err(invalid(format!(
                    "seconds_per_row is {step}; it must be a finite number > 0"
                )));
            }
            let end = start as f64 + self.rows as f64 * step;
            // i64 microseconds cover about +-292,000 years.
            if end.abs().max((start as f64).abs()) * 1e6 >= 9.2e18 {
                return Err(invalid(format!(
                    "timestamps starting at {start} s with {step} s per row overflow microseconds"
                )));
            }
        }
        Ok(())
    }

    fn timestamp_us(&self, row: usize) -> Option<i64> {
        self.timestamps
            .map(|(start, step)| start * 1_000_000 + (row as f64 * step * 1e6).round() as i64)
    }
}

/// Draws a stream's rows chunk by chunk so that long streams never sit in
/// memory whole; also reports which concept produced each row (for tests).
struct StreamRows<'a> {
    spec: &'a StreamSpec,
    concepts: Vec<Concept>,
    rng: ChaCha8Rng,
    /// A shuffled block of all cluster ids: drawing clusters block by block
    /// keeps classes balanced everywhere in the stream, not just overall.
    block: Vec<usize>,
    next: usize,
    buf: RowBuf,
}

impl<'a> StreamRows<'a> {
    fn new(spec: &'a StreamSpec) -> Result<Self, GenError> {
        spec.validate()?;
        let mut concepts = vec![Concept::try_new(&spec.concept)?];
        let mut seeds = ChaCha8Rng::seed_from_u64(spec.seed);
        seeds.set_stream(STREAM_DRIFT_SEEDS);
        for _ in &spec.drift_at {
            let prev = concepts.last().expect("starts with one concept");
            let next = prev.drifted(spec.drift_magnitude, seeds.random());
            concepts.push(next);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(STREAM_ROWS);
        Ok(StreamRows {
            spec,
            concepts,
            rng,
            block: Vec::new(),
            next: 0,
            buf: RowBuf::new(&spec.concept),
        })
    }

    /// Which concept produces row `r` (draws from the RNG inside a gradual
    /// transition).
    fn concept_for(&mut self, r: usize) -> usize {
        let passed = self.spec.drift_at.iter().take_while(|&&d| d <= r).count();
        if passed == 0 {
            return 0;
        }
        let start = self.spec.drift_at[passed - 1];
        let width = self.spec.drift_width;
        if r - start < width {
            let p = (r - start) as f64 / width as f64;
            if self.rng.random::<f64>() < p {
                passed
            } else {
                passed - 1
            }
        } else {
            passed
        }
    }

    /// The next `n` rows and the concept index of each.
    fn chunk(&mut self, n: usize) -> (Dataset, Vec<usize>) {
        let width = self.spec.concept.n_features;
        let mut data = Dataset::new(width);
        data.features.reserve(n * width);
        data.labels.reserve(n);
        let mut origin = Vec::with_capacity(n);
        for r in self.next..self.next + n {
            if self.block.is_empty() {
                self.block = (0..self.concepts[0].clusters.len()).collect();
                self.block.shuffle(&mut self.rng);
            }
            let k = self.block.pop().expect("refilled above");
            let c = self.concept_for(r);
            let label = self.concepts[c].draw_row(k, &mut self.rng, &mut self.buf);
            data.push_row(&self.buf.out, label);
            origin.push(c);
        }
        self.next += n;
        (data, origin)
    }
}

/// `part-000042.parquet`
fn part_name(index: usize) -> String {
    format!("part-{index:06}.parquet")
}

/// Writes the stream as Parquet files `part-000000.parquet`, ... into `dir`
/// (created if missing; same-named files are replaced, others left alone),
/// each written to a hidden temp name (`.part-000000.parquet.tmp`), synced,
/// then renamed: the convention for producers, so readers never see a
/// partial file. Returns the paths in order.
pub fn write_stream(dir: &Path, spec: &StreamSpec) -> Result<Vec<PathBuf>, GenError> {
    let mut rows = StreamRows::new(spec)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut paths = Vec::new();
    let mut start = 0;
    while start < spec.rows {
        let n = spec.rows_per_file.min(spec.rows - start);
        let (data, _) = rows.chunk(n);
        // None for every row when the spec has no timestamps.
        let ts: Option<Vec<i64>> = (start..start + n).map(|r| spec.timestamp_us(r)).collect();
        let name = part_name(paths.len());
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let written = write_parquet(&tmp, &data, ts.as_deref())
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_err(&path)));
        if let Err(e) = written {
            // Best effort: a stray temp file is harmless (hidden) but untidy.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        paths.push(path);
        start += n;
    }
    // Make the renames themselves durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(paths)
}

/// Feature column names `f0..f{n-1}`.
pub fn feature_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i}")).collect()
}

/// Writes one Parquet file with columns `f0..f{width-1}` (Float32) and
/// `label` (Int64), plus `ts` (Datetime(Microseconds), no time zone) when
/// timestamps (unix microseconds, one per row) are given. The file is synced
/// before returning.
pub fn write_parquet(
    path: &Path,
    data: &Dataset,
    timestamps_us: Option<&[i64]>,
) -> Result<(), GenError> {
    let n = data.len();
    if data.features.len() != n * data.width {
        return Err(invalid(format!(
            "data set has {} values for {n} rows of width {}",
            data.features.len(),
            data.width
        )));
    }
    if let Some(ts) = timestamps_us {
        if ts.len() != n {
            return Err(invalid(format!("{} timestamps for {n} rows", ts.len())));
        }
    }
    let mut columns: Vec<Column> = feature_names(data.width)
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let values: Vec<f32> = (0..n).map(|r| data.features[r * data.width + j]).collect();
            Column::new(name.into(), values)
        })
        .collect();
    columns.push(Column::new("label".into(), data.labels.as_slice()));
    if let Some(ts) = timestamps_us {
        let series = Series::new("ts".into(), ts).into_datetime(TimeUnit::Microseconds, None);
        columns.push(series.into_column());
    }
    let polars_err = |source| GenError::Polars {
        path: path.to_path_buf(),
        source,
    };
    let mut df = DataFrame::new(n, columns).map_err(polars_err)?;
    let mut file = File::create(path).map_err(io_err(path))?;
    ParquetWriter::new(&mut file)
        .finish(&mut df)
        .map_err(polars_err)?;
    file.sync_all().map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{DataType, ParquetReader, SerReader};

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    /// The Bayes classifier of a concept: the class of the cluster under
    /// which the row's informative part is most likely. It is the best any
    /// model of that concept can do, so it tells which concept rows fit.
    struct Bayes {
        /// Per cluster: inverse transform, log|det|, centroid, class.
        clusters: Vec<(Vec<f64>, f64, Vec<f64>, i64)>,
        /// Output column of each informative feature.
        informative_cols: Vec<usize>,
        d: usize,
    }

    /// Gauss-Jordan inverse with partial pivoting; returns (inverse, ln|det|).
    fn invert(a: &[f64], d: usize) -> (Vec<f64>, f64) {
        let mut m = a.to_vec();
        let mut inv: Vec<f64> = (0..d * d)
            .map(|i| if i / d == i % d { 1.0 } else { 0.0 })
            .collect();
        let mut log_det = 0.0;
        for col in 0..d {
            let p = (col..d)
                .max_by(|&x, &y| m[x * d + col].abs().total_cmp(&m[y * d + col].abs()))
                .unwrap();
            for j in 0..d {
                m.swap(col * d + j, p * d + j);
                inv.swap(col * d + j, p * d + j);
            }
            let piv = m[col * d + col];
            log_det += piv.abs().ln();
            for j in 0..d {
                m[col * d + j] /= piv;
                inv[col * d + j] /= piv;
            }
            for r in 0..d {
                if r != col {
                    let f = m[r * d + col];
                    for j in 0..d {
                        m[r * d + j] -= f * m[col * d + j];
                        inv[r * d + j] -= f * inv[col * d + j];
                    }
                }
            }
        }
        (inv, log_det)
    }

    impl Bayes {
        fn new(c: &Concept) -> Bayes {
            let d = c.spec.n_informative;
            let informative_cols = (0..d)
                .map(|i| c.columns.iter().position(|&s| s == i).unwrap())
                .collect();
            let clusters = c
                .clusters
                .iter()
                .enumerate()
                .map(|(k, cl)| {
                    let (inv, log_det) = invert(&cl.transform, d);
                    let class = (k % c.spec.n_classes) as i64;
                    (inv, log_det, cl.centroid.clone(), class)
                })
                .collect();
            Bayes {
                clusters,
                informative_cols,
                d,
            }
        }

        fn predict(&self, row: &[f32]) -> i64 {
            let d = self.d;
            let x: Vec<f64> = self
                .informative_cols
                .iter()
                .map(|&j| row[j] as f64)
                .collect();
            let mut best = (f64::NEG_INFINITY, 0);
            for (inv, log_det, centroid, class) in &self.clusters {
                // z = (x - c) * A^-1
                let ll = -(0..d)
                    .map(|j| {
                        let z: f64 = (0..d).map(|i| (x[i] - centroid[i]) * inv[i * d + j]).sum();
                        z * z
                    })
                    .sum::<f64>()
                    / 2.0
                    - log_det;
                if ll > best.0 {
                    best = (ll, *class);
                }
            }
            best.1
        }

        fn accuracy(&self, data: &Dataset) -> f64 {
            let hits = (0..data.len())
                .filter(|&i| self.predict(data.row(i)) == data.labels[i])
                .count();
            hits as f64 / data.len() as f64
        }
    }

    fn stream_spec(seed: u64) -> StreamSpec {
        StreamSpec {
            rows: 2500,
            concept: ClassificationSpec::reference(seed),
            drift_at: vec![1000],
            drift_width: 0,
            drift_magnitude: 1.0,
            rows_per_file: 400,
            timestamps: None,
            seed,
        }
    }

    fn counts(labels: &[i64], classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        for &l in labels {
            c[l as usize] += 1;
        }
        c
    }

    #[test]
    fn reference_shape() {
        let d = make_classification(&ClassificationSpec::reference(1));
        assert_eq!(d.len(), 1000);
        assert_eq!(d.width, 20);
        assert_eq!(d.features.len(), 20_000);
        assert!(d.features.iter().all(|x| x.is_finite()));
        assert!(d.labels.iter().all(|&l| l == 0 || l == 1));
    }

    #[test]
    fn deterministic_and_seed_sensitive() {
        let spec = ClassificationSpec::reference(7);
        let a = make_classification(&spec);
        let b = make_classification(&spec);
        assert_eq!(a.features, b.features);
        assert_eq!(a.labels, b.labels);
        let c = make_classification(&ClassificationSpec::reference(8));
        assert_ne!(a.features, c.features);
        assert_eq!(Concept::new(&spec), Concept::new(&spec));
        let d1 = Concept::new(&spec).drifted(0.5, 3);
        assert_eq!(d1, Concept::new(&spec).drifted(0.5, 3));
        assert_ne!(d1, Concept::new(&spec).drifted(0.5, 4));
    }

    #[test]
    fn classes_and_clusters_balanced() {
        let spec = ClassificationSpec {
            flip_y: 0.0,
            ..ClassificationSpec::reference(3)
        };
        assert_eq!(
            counts(&make_classification(&spec).labels, 2),
            vec![500, 500]
        );
        let three = ClassificationSpec {
            n_classes: 3,
            n_samples: 1000,
            ..spec
        };
        assert_eq!(
            counts(&make_classification(&three).labels, 3),
            vec![334, 333, 333]
        );
        assert_eq!(cluster_counts(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(cluster_counts(1000, 4).iter().sum::<usize>(), 1000);
    }

    #[test]
    fn flip_y_changes_only_labels_at_the_expected_rate() {
        let clean = ClassificationSpec {
            n_samples: 4000,
            flip_y: 0.0,
            ..ClassificationSpec::reference(5)
        };
        let noisy = ClassificationSpec {
            flip_y: 0.2,
            ..clean.clone()
        };
        let a = make_classification(&clean);
        let b = make_classification(&noisy);
        assert_eq!(a.features, b.features);
        let changed = a
            .labels
            .iter()
            .zip(&b.labels)
            .filter(|(x, y)| x != y)
            .count();
        // A flipped label lands on its own class half the time: expect 10%.
        let rate = changed as f64 / 4000.0;
        assert!((0.07..0.13).contains(&rate), "changed rate {rate}");
    }

    #[test]
    fn reference_is_learnable_and_full_drift_is_near_chance() {
        let spec = ClassificationSpec::reference(1);
        let concept = Concept::new(&spec);
        let bayes = Bayes::new(&concept);
        let acc = bayes.accuracy(&make_classification(&spec));
        assert!(acc > 0.9, "Bayes accuracy on the reference {acc}");
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut accs = Vec::new();
        for seed in 0..8 {
            let new = concept.drifted(1.0, seed).sample(2000, &mut rng);
            accs.push(bayes.accuracy(&new));
        }
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        assert!(
            (0.35..0.65).contains(&mean),
            "old model on new concepts {accs:?}"
        );
    }

    #[test]
    fn drift_magnitude_is_the_fraction_of_clusters_redrawn() {
        let spec = ClassificationSpec {
            n_clusters_per_class: 4,
            ..ClassificationSpec::reference(2)
        };
        let c = Concept::new(&spec);
        for (m, expect) in [(0.01, 1), (0.25, 2), (0.5, 4), (1.0, 8)] {
            let d = c.drifted(m, 11);
            let moved = c
                .clusters
                .iter()
                .zip(&d.clusters)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(moved, expect, "magnitude {m}");
            let old: HashSet<_> = c.clusters.iter().map(|k| &k.vertex).collect();
            for (a, b) in c.clusters.iter().zip(&d.clusters) {
                if a != b {
                    assert!(!old.contains(&b.vertex), "re-drawn onto an old vertex");
                }
            }
            assert_eq!(d.redundant, c.redundant);
            assert_eq!(d.columns, c.columns);
        }
        // A space with no free vertex still drifts (clusters trade places).
        let tiny = ClassificationSpec {
            n_features: 2,
            n_informative: 2,
            n_redundant: 0,
            n_clusters_per_class: 2,
            ..spec
        };
        let c = Concept::new(&tiny);
        assert_ne!(c.drifted(1.0, 1), c);
    }

    #[test]
    fn columns_are_informative_redundant_and_noise() {
        let spec = ClassificationSpec {
            n_features: 6,
            n_informative: 2,
            n_redundant: 1,
            n_samples: 50,
            ..ClassificationSpec::reference(4)
        };
        let c = Concept::new(&spec);
        let mut sorted = c.columns.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        // The redundant column is the informative ones mixed by the matrix.
        let col = |s: usize| c.columns.iter().position(|&x| x == s).unwrap();
        let data = make_classification(&spec);
        for i in 0..data.len() {
            let r = data.row(i);
            let want = r[col(0)] as f64 * c.redundant[0] + r[col(1)] as f64 * c.redundant[1];
            assert!((r[col(2)] as f64 - want).abs() < 1e-4);
        }
    }

    #[test]
    fn write_stream_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spec = StreamSpec {
            timestamps: Some((1_700_000_000, 1.5)),
            ..stream_spec(1)
        };
        let paths = write_stream(dir.path(), &spec).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            (0..7).map(part_name).collect::<Vec<_>>(),
            "2500 rows at 400 per file"
        );
        // Temp-then-rename: nothing but the parts is left in the directory.
        let mut listed: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        listed.sort();
        assert_eq!(listed, names);

        let (expected, _) = StreamRows::new(&spec).unwrap().chunk(spec.rows);
        let mut row = 0;
        let mut last_ts = i64::MIN;
        for p in &paths {
            let df = read(p);
            let n = df.height();
            assert_eq!(n, if row == 2400 { 100 } else { 400 });
            let mut want: Vec<String> = feature_names(20);
            want.extend(["label".into(), "ts".into()]);
            let got: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            assert_eq!(got, want);
            for f in feature_names(20) {
                assert_eq!(df.column(&f).unwrap().dtype(), &DataType::Float32);
            }
            assert_eq!(
                df.column("ts").unwrap().dtype(),
                &DataType::Datetime(TimeUnit::Microseconds, None)
            );
            let labels: Vec<i64> = df
                .column("label")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            assert_eq!(labels, expected.labels[row..row + n]);
            let f3: Vec<f32> = df
                .column("f3")
                .unwrap()
                .f32()
                .unwrap()
                .into_no_null_iter()
                .collect();
            let want_f3: Vec<f32> = (row..row + n).map(|r| expected.row(r)[3]).collect();
            assert_eq!(f3, want_f3);
            let ts = df.column("ts").unwrap().datetime().unwrap();
            for (i, t) in ts.physical().into_no_null_iter().enumerate() {
                let r = (row + i) as i64;
                assert_eq!(t, 1_700_000_000_000_000 + r * 1_500_000);
                assert!(t > last_ts);
                last_ts = t;
            }
            row += n;
        }
        assert_eq!(row, 2500);
        // Same spec, same bytes.
        let again = tempfile::tempdir().unwrap();
        let paths2 = write_stream(again.path(), &spec).unwrap();
        for (a, b) in paths.iter().zip(&paths2) {
            assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        }
    }

    #[test]
    fn no_timestamps_no_ts_column() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_stream(
            &dir.path().join("nested"),
            &StreamSpec {
                rows: 10,
                rows_per_file: 10,
                drift_at: vec![],
                ..stream_spec(2)
            },
        )
        .unwrap();
        assert_eq!(paths.len(), 1);
        let df = read(&paths[0]);
        assert_eq!(df.shape(), (10, 21));
        assert!(df.column("ts").is_err());
        assert_eq!(df.column("label").unwrap().dtype(), &DataType::Int64);
    }

    #[test]
    fn abrupt_drift_switches_concept_at_the_row() {
        let spec = stream_spec(3);
        let mut rows = StreamRows::new(&spec).unwrap();
        let (data, origin) = rows.chunk(spec.rows);
        assert!(origin[..1000].iter().all(|&c| c == 0));
        assert!(origin[1000..].iter().all(|&c| c == 1));
        // The rows really are the concepts': the old concept's Bayes
        // classifier is good before the drift and near chance after it.
        let old = Bayes::new(&rows.concepts[0]);
        let new = Bayes::new(&rows.concepts[1]);
        let before = data.slice(0, 1000);
        let after = data.slice(1000, 2500);
        assert!(old.accuracy(&before) > 0.9);
        assert!(new.accuracy(&after) > 0.9);
        let stale = old.accuracy(&after);
        assert!(stale < 0.75, "old concept after drift {stale}");
    }

    #[test]
    fn stream_is_balanced_locally() {
        let spec = StreamSpec {
            rows: 1002,
            concept: ClassificationSpec {
                flip_y: 0.0,
                ..ClassificationSpec::reference(6)
            },
            drift_width: 300,
            drift_at: vec![500],
            ..stream_spec(6)
        };
        let (data, _) = StreamRows::new(&spec).unwrap().chunk(spec.rows);
        // Every block of 4 rows (one per cluster) has both classes twice,
        // whichever concept each row came from.
        for block in data.labels.chunks_exact(4) {
            assert_eq!(counts(block, 2), vec![2, 2]);
        }
    }

    #[test]
    fn gradual_drift_mixes_linearly() {
        let spec = StreamSpec {
            rows: 6000,
            drift_at: vec![1000, 4000],
            drift_width: 2000,
            ..stream_spec(4)
        };
        let mut rows = StreamRows::new(&spec).unwrap();
        assert_eq!(rows.concepts.len(), 3);
        let (_, origin) = rows.chunk(spec.rows);
        let share_new = |from: usize, to: usize, concept: usize| {
            origin[from..to].iter().filter(|&&c| c == concept).count() as f64 / (to - from) as f64
        };
        assert!(origin[..1000].iter().all(|&c| c == 0));
        // Linear ramp: ~1/4 new in the first half of the window, ~3/4 in the second.
        let first = share_new(1000, 2000, 1);
        let second = share_new(2000, 3000, 1);
        assert!((0.18..0.32).contains(&first), "{first}");
        assert!((0.68..0.82).contains(&second), "{second}");
        assert!(origin[1000..3000].iter().all(|&c| c <= 1));
        assert!(origin[3000..4000].iter().all(|&c| c == 1));
        assert!(origin[4000..].iter().all(|&c| c >= 1));
        assert!(share_new(5000, 6000, 2) > 0.68);
    }

    #[test]
    fn chunks_do_not_depend_on_file_size() {
        let spec = stream_spec(5);
        let (whole, _) = StreamRows::new(&spec).unwrap().chunk(spec.rows);
        let mut rows = StreamRows::new(&spec).unwrap();
        let mut parts = Dataset::new(20);
        for n in [7, 993, 1500] {
            let (d, _) = rows.chunk(n);
            parts.extend(&d);
        }
        assert_eq!(whole.features, parts.features);
        assert_eq!(whole.labels, parts.labels);
    }

    fn assert_invalid(spec: &ClassificationSpec, needle: &str) {
        match spec.validate() {
            Err(GenError::InvalidSpec(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            other => panic!("expected InvalidSpec about {needle}, got {other:?}"),
        }
    }

    #[test]
    fn validation_errors() {
        let ok = ClassificationSpec::reference(1);
        ok.validate().unwrap();
        let bad = |f: fn(&mut ClassificationSpec)| {
            let mut s = ok.clone();
            f(&mut s);
            s
        };
        assert_invalid(
            &bad(|s| s.n_redundant = 6),
            "n_informative (15) + n_redundant (6)",
        );
        assert_invalid(&bad(|s| s.n_informative = 0), "n_informative");
        assert_invalid(&bad(|s| s.n_features = 0), "n_features");
        assert_invalid(&bad(|s| s.n_classes = 1), "n_classes");
        assert_invalid(&bad(|s| s.n_clusters_per_class = 0), "n_clusters_per_class");
        assert_invalid(
            &bad(|s| {
                s.n_informative = 2;
                s.n_classes = 3;
            }),
            "2^n_informative",
        );
        assert_invalid(
            &bad(|s| s.n_clusters_per_class = usize::MAX),
            "2^n_informative",
        );
        assert_invalid(&bad(|s| s.flip_y = 1.5), "flip_y");
        assert_invalid(&bad(|s| s.flip_y = f64::NAN), "flip_y");
        assert_invalid(&bad(|s| s.class_sep = f64::INFINITY), "class_sep");
        assert!(Concept::try_new(&bad(|s| s.n_classes = 1)).is_err());

        let dir = tempfile::tempdir().unwrap();
        let stream_err = |f: fn(&mut StreamSpec)| {
            let mut s = stream_spec(1);
            f(&mut s);
            match write_stream(dir.path(), &s) {
                Err(GenError::InvalidSpec(m)) => m,
                other => panic!("expected InvalidSpec, got {other:?}"),
            }
        };
        assert!(stream_err(|s| s.rows = 0).contains("rows"));
        assert!(stream_err(|s| s.rows_per_file = 0).contains("rows_per_file"));
        assert!(stream_err(|s| s.drift_at = vec![2500]).contains("drift_at[0]"));
        assert!(stream_err(|s| s.drift_at = vec![900, 800]).contains("increasing"));
        assert!(stream_err(|s| {
            s.drift_at = vec![100, 200];
            s.drift_width = 150;
        })
        .contains("overlaps"));
        assert!(stream_err(|s| s.drift_magnitude = 0.0).contains("drift_magnitude"));
        assert!(stream_err(|s| s.timestamps = Some((0, 0.0))).contains("seconds_per_row"));
        assert!(stream_err(|s| s.timestamps = Some((i64::MAX / 2, 1.0))).contains("overflow"));
        assert!(stream_err(|s| s.concept.flip_y = -0.1).contains("flip_y"));
        // Nothing was written for an invalid spec.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let d = Dataset::new(3);
        let err = write_parquet(&dir.path().join("x.parquet"), &d, Some(&[1])).unwrap_err();
        assert!(matches!(err, GenError::InvalidSpec(_)), "{err}");
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = write_stream(&file, &stream_spec(1)).unwrap_err();
        assert!(matches!(err, GenError::Io { .. }));
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn feature_names_and_spec_serde() {
        assert_eq!(feature_names(3), vec!["f0", "f1", "f2"]);
        assert!(feature_names(0).is_empty());
        let spec = StreamSpec {
            timestamps: Some((5, 0.25)),
            ..stream_spec(9)
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<StreamSpec>(&json).unwrap(), spec);
    }
}
