//! [`FeatureBins`]: one feature's profile as the monitor counts against it.
//!
//! The profile stores the training distribution as quantiles, so the recent
//! rows are compared in the same terms: each value is counted in the bin
//! between two consecutive distinct stored quantiles (at most 202 bins), and
//! both measures come from those counts when a check falls due. Counting is
//! a lookup in a grid over the cut points' range per value (a search among
//! the cuts of one cell when the value's cell holds some), whatever the
//! window; a check costs one pass over the bins.
//!
//! The KS statistic is taken at the cut points only, where the training CDF
//! is known (the profile's exact shares, or k/200 for profiles written
//! before they were stored). That D is at most the two-sample D of the raw
//! values, so the asymptotic p-value of the two-sample test is conservative:
//! it never claims more evidence than the data hold. With 201 quantiles the
//! loss is at most 0.005 in D.

use super::ks_p_value;
use super::profile::{FeatureProfile, PSI_FLOOR};

/// Bin index of a value left out of the counts (not finite).
pub(super) const NOT_COUNTED: u8 = u8::MAX;
/// Cells of the lookup grid over the cut points' range.
const GRID_CELLS: usize = 4096;

/// One feature's cut points, the training CDF at each, and the PSI bins.
#[derive(Debug, Clone)]
pub(super) struct FeatureBins {
    /// Distinct stored quantiles and PSI edges, ascending. Bin `i` is
    /// `(cuts[i-1], cuts[i]]`; bin 0 is open below, the last open above.
    cuts: Vec<f32>,
    /// The training share of values `<= cuts[i]`.
    train_cdf: Vec<f64>,
    /// The PSI bin each fine bin lies in (every PSI edge is a cut).
    psi_bin: Vec<u8>,
    /// The training share of each PSI bin.
    psi_shares: Vec<f64>,
    /// A lookup grid over `[cuts[0], cuts[last]]`, so finding a value's bin
    /// is mostly a multiply and a load rather than a binary search.
    grid: Grid,
}

/// `GRID_CELLS` equal cells from the lowest cut; `first[c]` is the number of
/// cuts in the cells before `c` (`GRID_CELLS + 1` entries).
#[derive(Debug, Clone)]
struct Grid {
    low: f32,
    cells_per_unit: f32,
    first: Vec<u8>,
}

impl Grid {
    fn new(cuts: &[f32]) -> Option<Grid> {
        let (&low, &high) = (cuts.first()?, cuts.last()?);
        let cells_per_unit = GRID_CELLS as f32 / (high - low);
        if !cells_per_unit.is_finite() || cells_per_unit <= 0.0 {
            return None;
        }
        let grid = Grid {
            low,
            cells_per_unit,
            first: Vec::new(),
        };
        // The cell of a value is monotone in the value, so a cut in an
        // earlier cell than a value's is below the value, and a cut in a
        // later cell above it.
        let first = (0..=GRID_CELLS)
            .map(|c| cuts.partition_point(|&x| grid.cell(x) < c) as u8)
            .collect();
        Some(Grid { first, ..grid })
    }

    fn cell(&self, value: f32) -> usize {
        // `as` saturates: below `low` is cell 0.
        (((value - self.low) * self.cells_per_unit) as usize).min(GRID_CELLS - 1)
    }
}

/// The two measures of one feature at one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Measures {
    pub psi: f64,
    pub ks_statistic: f64,
    pub ks_p_value: f64,
}

impl FeatureBins {
    pub(super) fn new(profile: &FeatureProfile) -> FeatureBins {
        let mut cuts: Vec<f32> = profile
            .quantiles
            .iter()
            .chain(&profile.bin_edges)
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        cuts.sort_by(f32::total_cmp);
        cuts.dedup();
        let train_cdf = cuts.iter().map(|&c| profile.share_at_or_below(c)).collect();
        let psi_bin = (0..=cuts.len())
            .map(|i| {
                // Every value of bin i is above cuts[i-1] and at most cuts[i],
                // so it lies above exactly the PSI edges <= cuts[i-1].
                let above = match i {
                    0 => 0,
                    _ => profile.bin_edges.partition_point(|&e| e <= cuts[i - 1]),
                };
                above as u8
            })
            .collect();
        FeatureBins {
            grid: Grid::new(&cuts).unwrap_or(Grid {
                low: 0.0,
                cells_per_unit: 0.0,
                first: Vec::new(),
            }),
            cuts,
            train_cdf,
            psi_bin,
            psi_shares: profile.bin_shares.clone(),
        }
    }

    /// How many bins the counts of this feature need.
    pub(super) fn bins(&self) -> usize {
        self.cuts.len() + 1
    }

    /// The bin of `value`, or [`NOT_COUNTED`].
    pub(super) fn bin_of(&self, value: f32) -> u8 {
        if !value.is_finite() {
            return NOT_COUNTED;
        }
        if self.grid.first.is_empty() {
            return self.cuts.partition_point(|&c| c < value) as u8;
        }
        // The cuts below `value` are those of the earlier cells and some of
        // its own cell's. Most cells hold no cut (4096 cells, at most 210
        // cuts): then that is all.
        let cell = self.grid.cell(value);
        let first = self.grid.first[cell] as usize;
        let last = self.grid.first[cell + 1] as usize;
        if first == last {
            return first as u8;
        }
        (first + self.cuts[first..last].partition_point(|&c| c < value)) as u8
    }

    /// PSI and KS of the recent values counted in `counts` (one per bin)
    /// against the `train_rows` training rows.
    pub(super) fn measure(&self, counts: &[u32], train_rows: f64) -> Measures {
        let m: u64 = counts.iter().map(|&c| c as u64).sum();
        if m == 0 || self.cuts.is_empty() {
            return Measures {
                psi: 0.0,
                ks_statistic: 0.0,
                ks_p_value: 1.0,
            };
        }
        let m_f = m as f64;
        let mut psi_counts = vec![0u64; self.psi_shares.len()];
        let mut below = 0u64;
        let mut d = 0f64;
        for (i, &c) in counts.iter().enumerate() {
            if let Some(slot) = psi_counts.get_mut(self.psi_bin[i] as usize) {
                *slot += c as u64;
            }
            below += c as u64;
            if let Some(&f) = self.train_cdf.get(i) {
                d = d.max((below as f64 / m_f - f).abs());
            }
        }
        let psi = self
            .psi_shares
            .iter()
            .zip(&psi_counts)
            .map(|(&e, &a)| {
                let (e, a) = (e.max(PSI_FLOOR), (a as f64 / m_f).max(PSI_FLOOR));
                (a - e) * (a / e).ln()
            })
            .sum();
        Measures {
            psi,
            ks_statistic: d,
            ks_p_value: ks_p_value(d, train_rows, m_f),
        }
    }

    /// The measures of `values` at once (the tests' way in).
    #[cfg(test)]
    pub(super) fn measure_values(&self, values: &[f32], train_rows: f64) -> Measures {
        let mut counts = vec![0u32; self.bins()];
        for &v in values {
            if let Some(c) = counts.get_mut(self.bin_of(v) as usize) {
                *c += 1;
            }
        }
        self.measure(&counts, train_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input_drift::{column, InputProfile};

    fn bins_of(train: &[f32]) -> (FeatureBins, f64) {
        let p = InputProfile::from_dataset(&column(train), &["x".into()]);
        (FeatureBins::new(&p.features[0]), p.rows as f64)
    }

    #[test]
    fn psi_by_hand() {
        // Training: 0..100, deciles at 9.9, 19.8, ... -> ten bins of 10 %.
        let train: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let (bins, n) = bins_of(&train);
        assert_eq!(bins.psi_shares.len(), 10);
        assert!(bins.psi_shares.iter().all(|&s| (s - 0.1).abs() < 1e-12));
        // Recent: everything in the first bin -> PSI by hand:
        // (1 - .1) ln(1 / .1) + 9 (1e-4 - .1) ln(1e-4 / .1).
        let expected = 0.9 * (10f64).ln() + 9.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln();
        let psi = bins.measure_values(&[0.0; 50], n).psi;
        assert!((psi - expected).abs() < 1e-9, "{psi}");
        // The same distribution: zero.
        assert!(bins.measure_values(&train, n).psi.abs() < 1e-12);
    }

    #[test]
    fn ks_statistic_by_hand() {
        // Training uniform on [0, 100]; recent all at 25: the training CDF is
        // 0.25 there, the recent one jumps 0 -> 1, so D = 0.75.
        let train: Vec<f32> = (0..=1000).map(|v| v as f32 / 10.0).collect();
        let (bins, n) = bins_of(&train);
        let d = bins.measure_values(&[25.0; 10], n).ks_statistic;
        assert!((d - 0.75).abs() < 0.006, "{d}");
        // Recent = the training values: the shares are exact, D is ~0.
        let same = bins.measure_values(&train, n);
        assert!(same.ks_statistic < 1e-9, "{same:?}");
        assert_eq!(same.ks_p_value, 1.0);
    }

    #[test]
    fn discrete_features_compare_fairly() {
        // 70 % zeros, 30 % ones, in training and in the recent rows.
        let train: Vec<f32> = (0..1000).map(|i| (i % 10 >= 7) as u8 as f32).collect();
        let (bins, n) = bins_of(&train);
        let recent: Vec<f32> = (0..500).map(|i| (i % 10 >= 7) as u8 as f32).collect();
        let same = bins.measure_values(&recent, n);
        assert!(same.ks_statistic < 1e-9, "{same:?}");
        assert!(same.psi < 1e-9);
        // Flipped shares: 30 % zeros -> D = 0.4.
        let flipped: Vec<f32> = (0..500).map(|i| (i % 10 >= 3) as u8 as f32).collect();
        let moved = bins.measure_values(&flipped, n);
        assert!((moved.ks_statistic - 0.4).abs() < 1e-9, "{moved:?}");
        assert!(moved.psi > 0.25);
    }

    #[test]
    fn binned_d_never_exceeds_the_raw_two_sample_d() {
        // The raw two-sample D between the training and recent values,
        // computed exactly, bounds the binned one from above.
        let train: Vec<f32> = (0..2000)
            .map(|i| ((i * 7919) % 2000) as f32 / 7.0)
            .collect();
        let recent: Vec<f32> = (0..700)
            .map(|i| ((i * 104729) % 1900) as f32 / 7.0)
            .collect();
        let (bins, n) = bins_of(&train);
        let binned = bins.measure_values(&recent, n).ks_statistic;
        let raw = {
            let (mut a, mut b) = (train.clone(), recent.clone());
            a.sort_by(f32::total_cmp);
            b.sort_by(f32::total_cmp);
            let mut d = 0f64;
            for &x in a.iter().chain(&b) {
                let fa = a.partition_point(|&v| v <= x) as f64 / a.len() as f64;
                let fb = b.partition_point(|&v| v <= x) as f64 / b.len() as f64;
                d = d.max((fa - fb).abs());
            }
            d
        };
        assert!(binned <= raw + 1e-12, "binned {binned} raw {raw}");
        assert!(binned > raw - 0.006, "binned {binned} raw {raw}");
    }

    #[test]
    fn the_grid_finds_the_bin_a_binary_search_finds() {
        // Skewed (many cuts in one cell), discrete, spread, and
        // normal-looking features.
        let skewed: Vec<f32> = (1..3000).map(|i| (i as f32 / 100.0).exp()).collect();
        let discrete: Vec<f32> = (0..3000).map(|i| (i % 4) as f32).collect();
        let spread: Vec<f32> = (0..3000).map(|i| i as f32 * 0.37 - 500.0).collect();
        let bell: Vec<f32> = (1..3000)
            .map(|i| {
                let u = i as f32 / 3000.0;
                (u / (1.0 - u)).ln()
            })
            .collect();
        for train in [skewed, discrete, spread, bell] {
            let (bins, _) = bins_of(&train);
            assert!(!bins.grid.first.is_empty());
            let probes = train
                .iter()
                .chain(&bins.cuts)
                .flat_map(|&v| [v, v.next_up(), v.next_down(), v * 1.001, -v]);
            for v in probes {
                let expected = bins.cuts.partition_point(|&c| c < v) as u8;
                assert_eq!(bins.bin_of(v), expected, "{v}");
            }
        }
        // A constant feature has no grid; values still find their bin.
        let (constant, _) = bins_of(&[3.0; 100]);
        assert!(constant.grid.first.is_empty());
        assert_eq!(constant.bin_of(3.0), 0);
        assert_eq!(constant.bin_of(3.5), 1);
    }

    #[test]
    fn values_outside_the_training_range_and_non_finite_ones() {
        let train: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let (bins, _) = bins_of(&train);
        assert_eq!(bins.bin_of(-5.0), 0);
        assert_eq!(bins.bin_of(1e9) as usize, bins.bins() - 1);
        assert_eq!(bins.bin_of(f32::NAN), NOT_COUNTED);
        assert_eq!(bins.bin_of(f32::INFINITY), NOT_COUNTED);
    }
}
