//! The drift generators of the stream-learning literature, as MOA and River
//! define them: SEA concepts, Agrawal's ten functions, the rotating
//! hyperplane, random RBF with moving centroids and STAGGER; with abrupt,
//! gradual, incremental and recurring drift and label noise. Streams that
//! nobody here designed, for judging driftd's update decisions.
//!
//! Rows are drawn from `ChaCha8Rng` streams seeded from the spec (one for the
//! concepts, one for the rows), so a spec always yields the same files.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::{write_files, GenError, SpecError};
use crate::model::Dataset;

const STREAM_CONCEPTS: u64 = 10;
const STREAM_ROWS: u64 = 11;

/// Which generator of the literature draws the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// Street & Kim (2001): 3 features in [0, 10], label f0 + f1 <= theta;
    /// the concepts are theta = 8, 9, 7, 9.5.
    Sea,
    /// Agrawal et al. (1993): 9 loan-applicant features, ten labelling
    /// functions (MOA's and River's definitions).
    Agrawal,
    /// Hulten et al. (2001): a hyperplane in [0, 1]^d whose weights rotate.
    Hyperplane,
    /// Random radial basis functions: 50 Gaussian centroids in [0, 1]^d, each
    /// with a class; drift moves the centroids.
    Rbf,
    /// Schlimmer & Granger (1986): size, colour, shape (0..=2 each), three
    /// boolean concepts.
    Stagger,
}

/// How the concept changes at each drift point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The next concept replaces the current one at the drift point.
    Abrupt,
    /// Around the drift point a row comes from the new concept with a
    /// probability rising as a sigmoid over `width` rows (River's
    /// `ConceptDriftStream`).
    Gradual,
    /// The concept moves a little at every row (hyperplane weights, RBF
    /// centroids); SEA's threshold slides from one concept's to the next's.
    Incremental,
    /// Abrupt changes that alternate between two concepts: A, B, A, B, ...
    Recurring,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiteratureSpec {
    pub generator: Generator,
    pub drift: DriftKind,
    pub rows: usize,
    /// Drift points, evenly spaced: at `rows * k / (drifts + 1)`.
    pub drifts: usize,
    /// Rows of a gradual transition.
    pub width: usize,
    /// Share of labels flipped (label noise), in [0, 0.5].
    pub noise: f64,
    /// Feature count of the hyperplane and RBF generators (SEA: 3, Agrawal:
    /// 9, STAGGER: 3, whatever this says).
    pub features: usize,
    pub rows_per_file: usize,
    /// `Some((start_unix_seconds, seconds_per_row))` writes a `ts` column.
    pub timestamps: Option<(i64, f64)>,
    pub seed: u64,
}

impl LiteratureSpec {
    pub fn validate(&self) -> Result<(), GenError> {
        if self.rows == 0 || self.rows_per_file == 0 {
            return Err(SpecError::NoRowsOrRowsPerFile.into());
        }
        if !(0.0..=0.5).contains(&self.noise) {
            return Err(SpecError::Noise { noise: self.noise }.into());
        }
        if self.drift == DriftKind::Gradual && self.width == 0 {
            return Err(SpecError::NoGradualWidth.into());
        }
        if self.drifts >= self.rows {
            return Err(SpecError::TooManyDrifts {
                drifts: self.drifts,
                rows: self.rows,
            }
            .into());
        }
        if matches!(self.generator, Generator::Hyperplane | Generator::Rbf)
            && !(2..=1000).contains(&self.features)
        {
            return Err(SpecError::FeatureCount {
                features: self.features,
            }
            .into());
        }
        if self.drift == DriftKind::Incremental
            && matches!(self.generator, Generator::Agrawal | Generator::Stagger)
        {
            return Err(SpecError::DiscreteConcepts {
                generator: self.generator,
            }
            .into());
        }
        Ok(())
    }

    /// The columns each row has.
    pub fn width(&self) -> usize {
        match self.generator {
            Generator::Sea | Generator::Stagger => 3,
            Generator::Agrawal => 9,
            Generator::Hyperplane | Generator::Rbf => self.features,
        }
    }

    /// Where the concept changes (the centre of a gradual transition).
    pub fn drift_points(&self) -> Vec<usize> {
        (1..=self.drifts)
            .map(|k| self.rows * k / (self.drifts + 1))
            .collect()
    }
}

/// A concept of one generator: how a row is labelled (and, for RBF, drawn).
enum Concept {
    Sea { theta: f64 },
    Agrawal { function: usize },
    Hyperplane { weights: Vec<f64> },
    Rbf { centroids: Vec<Centroid> },
    Stagger { function: usize },
}

#[derive(Clone)]
struct Centroid {
    centre: Vec<f64>,
    class: i64,
    std_dev: f64,
    weight: f64,
}

const SEA_THETAS: [f64; 4] = [8.0, 9.0, 7.0, 9.5];
const RBF_CENTROIDS: usize = 50;
/// MOA's defaults for the rotating hyperplane: weights move by this much per
/// row, and each direction reverses with this probability.
const HYPERPLANE_MAG_CHANGE: f64 = 0.001;
const HYPERPLANE_SIGMA: f64 = 0.1;
/// How far RBF centroids move per row under incremental drift.
const RBF_SPEED: f64 = 0.0001;

/// The concept sequence of a stream plus its state under incremental drift.
pub struct LiteratureRows {
    spec: LiteratureSpec,
    concepts: Vec<Concept>,
    drift_points: Vec<usize>,
    rng: ChaCha8Rng,
    /// Incremental drift: per weight or centroid coordinate, the direction.
    directions: Vec<Vec<f64>>,
    next: usize,
}

impl LiteratureRows {
    pub fn new(spec: &LiteratureSpec) -> Result<Self, GenError> {
        spec.validate()?;
        let mut model_rng = ChaCha8Rng::seed_from_u64(spec.seed);
        model_rng.set_stream(STREAM_CONCEPTS);
        let count = match spec.drift {
            DriftKind::Recurring => 2.min(spec.drifts + 1),
            DriftKind::Incremental => 1,
            _ => spec.drifts + 1,
        };
        let mut concepts: Vec<Concept> = Vec::with_capacity(count);
        for k in 0..count {
            let previous = concepts.last();
            concepts.push(new_concept(spec, k, previous, &mut model_rng));
        }
        let directions = initial_directions(spec, &concepts, &mut model_rng);
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(STREAM_ROWS);
        Ok(LiteratureRows {
            drift_points: spec.drift_points(),
            spec: spec.clone(),
            concepts,
            rng,
            directions,
            next: 0,
        })
    }

    /// Which concept labels row `r`, and (SEA incremental) where between it
    /// and the next one the threshold is.
    fn concept_for(&mut self, r: usize) -> usize {
        let passed = self.drift_points.iter().take_while(|&&d| d <= r).count();
        let segment = match self.spec.drift {
            DriftKind::Gradual => {
                // Each drift point is the centre of a sigmoid transition.
                let mut seg = 0;
                for (i, &d) in self.drift_points.iter().enumerate() {
                    let x = -4.0 * (r as f64 - d as f64) / self.spec.width as f64;
                    let p_new = 1.0 / (1.0 + x.exp());
                    if self.rng.random::<f64>() < p_new {
                        seg = i + 1;
                    }
                }
                seg
            }
            _ => passed,
        };
        match self.spec.drift {
            DriftKind::Recurring => segment % self.concepts.len(),
            DriftKind::Incremental => 0,
            _ => segment,
        }
    }

    /// The next `n` rows.
    pub fn chunk(&mut self, n: usize) -> Dataset {
        let width = self.spec.width();
        let mut data = Dataset::new(width);
        let mut row = vec![0f32; width];
        for r in self.next..self.next + n {
            let c = self.concept_for(r);
            if self.spec.drift == DriftKind::Incremental {
                self.move_incrementally(r);
            }
            let mut label = draw(&self.concepts[c], &self.spec, &mut self.rng, &mut row);
            if self.spec.noise > 0.0 && self.rng.random::<f64>() < self.spec.noise {
                label = 1 - label;
            }
            data.push_row(&row, label);
        }
        self.next += n;
        data
    }

    fn move_incrementally(&mut self, r: usize) {
        let rng = &mut self.rng;
        match &mut self.concepts[0] {
            Concept::Hyperplane { weights } => {
                // MOA: every weight moves by mag_change in its direction,
                // which reverses with probability sigma.
                for (w, dir) in weights.iter_mut().zip(self.directions[0].iter_mut()) {
                    *w += *dir * HYPERPLANE_MAG_CHANGE;
                    if rng.random::<f64>() < HYPERPLANE_SIGMA {
                        *dir = -*dir;
                    }
                }
            }
            Concept::Rbf { centroids } => {
                for (c, dir) in centroids.iter_mut().zip(self.directions.iter_mut()) {
                    for (x, d) in c.centre.iter_mut().zip(dir.iter_mut()) {
                        *x += *d * RBF_SPEED;
                        if !(0.0..=1.0).contains(x) {
                            *x = x.clamp(0.0, 1.0);
                            *d = -*d;
                        }
                    }
                }
            }
            Concept::Sea { theta } => {
                // The threshold slides linearly through the concepts' values,
                // reaching concept k's at drift point k.
                let points = &self.drift_points;
                let k = points.iter().take_while(|&&d| d <= r).count();
                let (from, to) = (
                    if k == 0 { 0 } else { points[k - 1] },
                    points.get(k).copied().unwrap_or(self.spec.rows),
                );
                let a = SEA_THETAS[k % 4];
                let b = SEA_THETAS[(k + 1) % 4];
                let t = (r - from) as f64 / (to - from).max(1) as f64;
                *theta = if k < points.len() { a + (b - a) * t } else { a };
            }
            Concept::Agrawal { .. } | Concept::Stagger { .. } => {}
        }
    }
}

fn new_concept(
    spec: &LiteratureSpec,
    k: usize,
    previous: Option<&Concept>,
    rng: &mut ChaCha8Rng,
) -> Concept {
    match spec.generator {
        Generator::Sea => Concept::Sea {
            theta: SEA_THETAS[k % 4],
        },
        Generator::Agrawal => {
            // River's generate_drift: a different function, at random.
            let mut function = rng.random_range(0..10);
            if let Some(Concept::Agrawal { function: prev }) = previous {
                while function == *prev {
                    function = rng.random_range(0..10);
                }
            }
            Concept::Agrawal { function }
        }
        Generator::Stagger => Concept::Stagger { function: k % 3 },
        Generator::Hyperplane => Concept::Hyperplane {
            weights: (0..spec.features).map(|_| rng.random::<f64>()).collect(),
        },
        Generator::Rbf => Concept::Rbf {
            centroids: (0..RBF_CENTROIDS)
                .map(|_| Centroid {
                    centre: (0..spec.features).map(|_| rng.random::<f64>()).collect(),
                    class: rng.random_range(0..2),
                    std_dev: rng.random::<f64>(),
                    weight: rng.random::<f64>(),
                })
                .collect(),
        },
    }
}

/// Unit directions for incremental drift: every hyperplane weight starts
/// moving up (MOA); every RBF centroid gets a random unit speed (River).
fn initial_directions(
    spec: &LiteratureSpec,
    concepts: &[Concept],
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<f64>> {
    if spec.drift != DriftKind::Incremental {
        return Vec::new();
    }
    match &concepts[0] {
        Concept::Hyperplane { weights } => vec![vec![1.0; weights.len()]],
        Concept::Rbf { centroids } => centroids
            .iter()
            .map(|c| {
                let v: Vec<f64> = c.centre.iter().map(|_| rng.random::<f64>()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Draws one row of `concept` into `row` and returns its label.
fn draw(concept: &Concept, spec: &LiteratureSpec, rng: &mut ChaCha8Rng, row: &mut [f32]) -> i64 {
    match concept {
        Concept::Sea { theta } => {
            let x: [f64; 3] = [0.0; 3].map(|_| rng.random::<f64>() * 10.0);
            for (o, v) in row.iter_mut().zip(x) {
                *o = v as f32;
            }
            i64::from(x[0] + x[1] <= *theta)
        }
        Concept::Agrawal { function } => draw_agrawal(*function, rng, row),
        Concept::Stagger { function } => {
            let [size, color, shape] = [0; 3].map(|_| rng.random_range(0..3u8));
            row[0] = f32::from(size);
            row[1] = f32::from(color);
            row[2] = f32::from(shape);
            i64::from(match function {
                0 => size == 0 && color == 0,
                1 => color == 2 || shape == 0,
                _ => size == 1 || size == 2,
            })
        }
        Concept::Hyperplane { weights } => {
            let mut sum = 0.0;
            for (o, w) in row.iter_mut().zip(weights) {
                let x = rng.random::<f64>();
                *o = x as f32;
                sum += w * x;
            }
            i64::from(sum >= 0.5 * weights.iter().sum::<f64>())
        }
        Concept::Rbf { centroids } => draw_rbf(centroids, spec.features, rng, row),
    }
}

fn draw_rbf(centroids: &[Centroid], width: usize, rng: &mut ChaCha8Rng, row: &mut [f32]) -> i64 {
    let total: f64 = centroids.iter().map(|c| c.weight).sum();
    let mut pick = rng.random::<f64>() * total;
    let c = centroids
        .iter()
        .find(|c| {
            pick -= c.weight;
            pick <= 0.0
        })
        .unwrap_or(&centroids[centroids.len() - 1]);
    let dir: Vec<f64> = (0..width)
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let norm = dir.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    let magnitude = rng.sample::<f64, _>(StandardNormal) * c.std_dev;
    for ((o, d), centre) in row.iter_mut().zip(&dir).zip(&c.centre) {
        *o = (centre + d * magnitude / norm) as f32;
    }
    c.class
}

/// Agrawal's features (salary, commission, age, elevel, car, zipcode,
/// hvalue, hyears, loan) and function `f`'s label, as River draws them.
fn draw_agrawal(f: usize, rng: &mut ChaCha8Rng, row: &mut [f32]) -> i64 {
    let salary = 20_000.0 + 130_000.0 * rng.random::<f64>();
    let commission = if salary >= 75_000.0 {
        0.0
    } else {
        10_000.0 + 75_000.0 * rng.random::<f64>()
    };
    let age = rng.random_range(20..=80) as f64;
    let elevel = rng.random_range(0..=4) as f64;
    let car = rng.random_range(1..=20) as f64;
    let zipcode = rng.random_range(0..=8) as f64;
    let hvalue = (8.0 - zipcode) * 100_000.0 * (0.5 + rng.random::<f64>());
    let hyears = rng.random_range(1..=30) as f64;
    let loan = rng.random::<f64>() * 500_000.0;
    let values = [
        salary, commission, age, elevel, car, zipcode, hvalue, hyears, loan,
    ];
    for (o, v) in row.iter_mut().zip(values) {
        *o = v as f32;
    }
    i64::from(agrawal_label(f, &values))
}

/// The ten functions, transcribed from River (which follows MOA), including
/// their quirks (function 4 compares salary with loan-sized bounds).
fn agrawal_label(f: usize, v: &[f64; 9]) -> bool {
    let [salary, commission, age, elevel, _car, _zip, hvalue, hyears, loan] = *v;
    let within = |x: f64, lo: f64, hi: f64| lo <= x && x <= hi;
    let young = age < 40.0;
    let middle = !young && age < 60.0;
    match f {
        0 => young || age >= 60.0,
        1 | 5 => {
            let s = if f == 5 { salary + commission } else { salary };
            if young {
                within(s, 50_000.0, 100_000.0)
            } else if middle {
                within(s, 75_000.0, 125_000.0)
            } else {
                within(s, 25_000.0, 75_000.0)
            }
        }
        2 => {
            if young {
                elevel <= 1.0
            } else if middle {
                (1.0..=3.0).contains(&elevel)
            } else {
                elevel >= 2.0
            }
        }
        3 => {
            if young {
                if elevel <= 1.0 {
                    within(salary, 25_000.0, 75_000.0)
                } else {
                    within(salary, 50_000.0, 100_000.0)
                }
            } else if middle {
                if (1.0..=3.0).contains(&elevel) {
                    within(salary, 50_000.0, 100_000.0)
                } else {
                    within(salary, 75_000.0, 125_000.0)
                }
            } else if elevel >= 2.0 {
                within(salary, 50_000.0, 100_000.0)
            } else {
                within(salary, 25_000.0, 75_000.0)
            }
        }
        4 => {
            if young {
                if within(salary, 50_000.0, 100_000.0) {
                    within(loan, 100_000.0, 300_000.0)
                } else {
                    within(salary, 200_000.0, 400_000.0)
                }
            } else if middle {
                if within(salary, 75_000.0, 125_000.0) {
                    salary >= 200_000.0 && loan <= 400_000.0
                } else {
                    within(salary, 300_000.0, 500_000.0)
                }
            } else if within(salary, 25_000.0, 75_000.0) {
                within(loan, 300_000.0, 500_000.0)
            } else {
                within(loan, 75_000.0, 300_000.0)
            }
        }
        6 => 2.0 * (salary + commission) / 3.0 - loan / 5.0 - 20_000.0 <= 1.0,
        7 => 2.0 * (salary + commission) / 3.0 - 5_000.0 * elevel - 20_000.0 <= 1.0,
        8 => 2.0 * (salary + commission) / 3.0 - 5_000.0 * elevel - loan / 5.0 - 10_000.0 <= 1.0,
        _ => {
            let equity = if hyears >= 20.0 {
                hvalue * (hyears - 20.0) / 10.0
            } else {
                0.0
            };
            2.0 * (salary + commission) / 3.0 - 5_000.0 * elevel + equity / 5.0 - 10_000.0 <= 1.0
        }
    }
}

/// Writes the stream as `part-NNNNNN.parquet` files (the producers'
/// temp-then-rename convention), returning their paths in order.
pub fn write_literature_stream(
    dir: &Path,
    spec: &LiteratureSpec,
) -> Result<Vec<PathBuf>, GenError> {
    let mut rows = LiteratureRows::new(spec)?;
    let timestamp_us = |r: usize| {
        spec.timestamps
            .map(|(start, step)| start * 1_000_000 + (r as f64 * step * 1e6).round() as i64)
    };
    write_files(dir, spec.rows, spec.rows_per_file, |start, n| {
        let data = rows.chunk(n);
        let ts: Option<Vec<i64>> = (start..start + n).map(timestamp_us).collect();
        (data, ts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(generator: Generator, drift: DriftKind) -> LiteratureSpec {
        LiteratureSpec {
            generator,
            drift,
            rows: 4000,
            drifts: 1,
            width: 400,
            noise: 0.0,
            features: 5,
            rows_per_file: 1000,
            timestamps: None,
            seed: 3,
        }
    }

    fn share_positive(d: &Dataset) -> f64 {
        d.labels.iter().filter(|&&l| l == 1).count() as f64 / d.len() as f64
    }

    #[test]
    fn sea_labels_follow_the_threshold_of_each_concept() {
        let mut rows = LiteratureRows::new(&spec(Generator::Sea, DriftKind::Abrupt)).unwrap();
        let before = rows.chunk(2000);
        let after = rows.chunk(2000);
        for (d, theta) in [(&before, 8.0), (&after, 9.0)] {
            for i in 0..d.len() {
                let r = d.row(i);
                assert_eq!(
                    d.labels[i],
                    i64::from(f64::from(r[0]) + f64::from(r[1]) <= theta)
                );
                assert!(r.iter().all(|x| (0.0..=10.0).contains(x)));
            }
        }
    }

    #[test]
    fn label_noise_flips_about_its_share() {
        let mut s = spec(Generator::Sea, DriftKind::Abrupt);
        s.noise = 0.1;
        s.drifts = 0;
        let d = LiteratureRows::new(&s).unwrap().chunk(20_000);
        let wrong = (0..d.len())
            .filter(|&i| {
                let r = d.row(i);
                d.labels[i] != i64::from(r[0] + r[1] <= 8.0)
            })
            .count() as f64
            / d.len() as f64;
        assert!((wrong - 0.1).abs() < 0.01, "flipped {wrong}");
    }

    #[test]
    fn agrawal_functions_follow_their_definitions() {
        // Function 0: young or old is class 1.
        let v = |age: f64| [60_000.0, 0.0, age, 1.0, 3.0, 2.0, 1e5, 5.0, 1e5];
        assert!(agrawal_label(0, &v(30.0)));
        assert!(!agrawal_label(0, &v(50.0)));
        assert!(agrawal_label(0, &v(60.0)));
        // Function 2 for the middle-aged: elevel 1 to 3.
        assert!(agrawal_label(2, &v(45.0)));
        // Function 6: disposable income 2/3 * 60k - 100k/5 - 20k = 0 -> class 1.
        assert!(agrawal_label(6, &v(45.0)));
        let mut rows = LiteratureRows::new(&spec(Generator::Agrawal, DriftKind::Abrupt)).unwrap();
        let d = rows.chunk(3000);
        assert_eq!(d.width, 9);
        for i in 0..d.len() {
            let r = d.row(i);
            assert!((20_000.0..=150_000.0).contains(&r[0]));
            assert_eq!(r[1] == 0.0, r[0] >= 75_000.0);
            assert!((20.0..=80.0).contains(&r[2]));
        }
    }

    #[test]
    fn consecutive_agrawal_concepts_differ() {
        let mut s = spec(Generator::Agrawal, DriftKind::Abrupt);
        s.drifts = 9;
        let rows = LiteratureRows::new(&s).unwrap();
        let functions: Vec<usize> = rows
            .concepts
            .iter()
            .map(|c| match c {
                Concept::Agrawal { function } => *function,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(functions.len(), 10);
        assert!(functions.windows(2).all(|w| w[0] != w[1]), "{functions:?}");
    }

    #[test]
    fn stagger_concepts_and_recurrence() {
        let mut s = spec(Generator::Stagger, DriftKind::Recurring);
        s.drifts = 3;
        let mut rows = LiteratureRows::new(&s).unwrap();
        let label = |r: &[f32], f: usize| match f {
            0 => r[0] == 0.0 && r[1] == 0.0,
            _ => r[1] == 2.0 || r[2] == 0.0,
        };
        for segment in 0..4 {
            let d = rows.chunk(1000);
            for i in 0..d.len() {
                assert_eq!(d.labels[i], i64::from(label(d.row(i), segment % 2)));
            }
        }
    }

    #[test]
    fn gradual_drift_mixes_the_concepts_around_the_drift_point() {
        let mut rows = LiteratureRows::new(&spec(Generator::Sea, DriftKind::Gradual)).unwrap();
        // Rows of the first 1000 come from concept 0 (theta 8): the
        // transition is centred at 2000 with width 400.
        let d = rows.chunk(4000);
        let agrees = |from: usize, to: usize, theta: f32| {
            (from..to)
                .filter(|&i| d.labels[i] == i64::from(d.row(i)[0] + d.row(i)[1] <= theta))
                .count() as f64
                / (to - from) as f64
        };
        assert_eq!(agrees(0, 1000, 8.0), 1.0);
        assert_eq!(agrees(3000, 4000, 9.0), 1.0);
        // Both concepts appear inside the transition (they disagree on
        // rows with 8 < f0 + f1 <= 9).
        let mixed: Vec<usize> = (1900..2100)
            .filter(|&i| {
                let s = d.row(i)[0] + d.row(i)[1];
                s > 8.0 && s <= 9.0
            })
            .collect();
        let new = mixed.iter().filter(|&&i| d.labels[i] == 1).count();
        assert!(new > 0 && new < mixed.len(), "{new} of {}", mixed.len());
    }

    #[test]
    fn the_hyperplane_rotates_under_incremental_drift() {
        let mut s = spec(Generator::Hyperplane, DriftKind::Incremental);
        s.rows = 40_000;
        let mut rows = LiteratureRows::new(&s).unwrap();
        let Concept::Hyperplane { weights } = &rows.concepts[0] else {
            unreachable!()
        };
        let before = weights.clone();
        let d = rows.chunk(40_000);
        let Concept::Hyperplane { weights } = &rows.concepts[0] else {
            unreachable!()
        };
        assert!(before
            .iter()
            .zip(weights)
            .any(|(a, b)| (a - b).abs() > 0.01));
        assert!((share_positive(&d) - 0.5).abs() < 0.1);
    }

    #[test]
    fn rbf_rows_are_near_their_centroids_and_both_classes_appear() {
        let mut rows = LiteratureRows::new(&spec(Generator::Rbf, DriftKind::Incremental)).unwrap();
        let d = rows.chunk(4000);
        assert_eq!(d.width, 5);
        let p = share_positive(&d);
        assert!(p > 0.05 && p < 0.95, "{p}");
        assert!(d.features.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn the_same_spec_gives_the_same_rows() {
        let s = spec(Generator::Rbf, DriftKind::Abrupt);
        let a = LiteratureRows::new(&s).unwrap().chunk(500);
        let b = LiteratureRows::new(&s).unwrap().chunk(500);
        assert_eq!(a.features, b.features);
        assert_eq!(a.labels, b.labels);
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let mut s = spec(Generator::Agrawal, DriftKind::Incremental);
        assert!(s.validate().unwrap_err().to_string().contains("discrete"));
        s.drift = DriftKind::Abrupt;
        s.noise = 0.7;
        assert!(s.validate().unwrap_err().to_string().contains("noise"));
    }
}
