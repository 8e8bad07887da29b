//! DDM (Gama et al. 2004): the error rate since the last reset against its
//! lowest `p + s`.

use serde::{Deserialize, Serialize};

use super::{Detector, Severity};

/// Parameters of [`Ddm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdmParams {
    /// Warning at `p + s ≥ p_min + warning_level · s_min` (paper: 2).
    pub warning_level: f64,
    /// Drift at `p + s ≥ p_min + drift_level · s_min` (paper: 3).
    pub drift_level: f64,
    /// Rows since the last reset before the minimum is tracked and a level
    /// can be reported (the paper waits for more than 30).
    pub min_rows: u64,
}

impl Default for DdmParams {
    fn default() -> Self {
        DdmParams {
            warning_level: 2.0,
            drift_level: 3.0,
            min_rows: 30,
        }
    }
}

/// DDM, the Drift Detection Method.
///
/// J. Gama, P. Medas, G. Castillo, P. Rodrigues, "Learning with Drift
/// Detection", *Advances in Artificial Intelligence – SBIA 2004* (17th
/// Brazilian Symposium on Artificial Intelligence), LNCS 3171, pp. 286–295,
/// Springer, 2004.
///
/// The errors since the last reset are Bernoulli trials, as in the paper: at
/// row `i` the error rate is `p_i` with standard deviation
/// `s_i = sqrt(p_i (1 − p_i) / i)`. From row `min_rows` on, the row where
/// `p_i + s_i` was lowest is kept as `p_min`, `s_min`, and the row reports
/// - `Warning` when `p_i + s_i ≥ p_min + warning_level · s_min`,
/// - `Drift` when `p_i + s_i ≥ p_min + drift_level · s_min`,
///
/// after which the detector starts over, as the paper does when it declares
/// a new context.
///
/// A row with `s_i = 0` (no error yet, or nothing but errors) is never taken
/// as the minimum: with `s_min = 0` every later row would satisfy
/// `p_i + s_i ≥ p_min`, so the first error after an error-free start would
/// be a drift. That is the degenerate end of the normal approximation the
/// paper relies on, not a change.
#[derive(Debug, Clone)]
pub struct Ddm {
    params: DdmParams,
    rows: u64,
    errors: u64,
    /// `(p_min, s_min)` once a row with `s_i > 0` has been seen.
    min: Option<(f64, f64)>,
    /// Set by a drift; the reset happens at the next row so that `estimate`
    /// still describes the rows that raised the drift.
    reset_pending: bool,
}

impl Ddm {
    pub fn new(params: DdmParams) -> Self {
        Ddm {
            params,
            rows: 0,
            errors: 0,
            min: None,
            reset_pending: false,
        }
    }

    /// Rows since the last reset.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// `(p_min, s_min)`, once known.
    pub fn minimum(&self) -> Option<(f64, f64)> {
        self.min
    }
}

impl Detector for Ddm {
    fn update(&mut self, error: bool) -> Option<Severity> {
        if self.reset_pending {
            self.reset();
        }
        self.rows += 1;
        self.errors += u64::from(error);
        if self.rows < self.params.min_rows {
            return None;
        }
        let i = self.rows as f64;
        let p = self.errors as f64 / i;
        let s = (p * (1.0 - p) / i).sqrt();
        if s > 0.0 && self.min.is_none_or(|(pm, sm)| p + s < pm + sm) {
            self.min = Some((p, s));
        }
        let (p_min, s_min) = self.min?;
        if p + s >= p_min + self.params.drift_level * s_min {
            self.reset_pending = true;
            Some(Severity::Drift)
        } else if p + s >= p_min + self.params.warning_level * s_min {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    fn reset(&mut self) {
        *self = Ddm::new(self.params.clone());
    }

    fn name(&self) -> &'static str {
        "ddm"
    }

    fn estimate(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.errors as f64 / self.rows as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::{bits, close, run};
    use crate::detect::Severity::{Drift, Warning};

    #[test]
    fn ddm_alarm_positions_worked_by_hand() {
        // Errors at rows 1-3, right at rows 4-100, errors from row 101.
        // From row 30 (min_rows) to 100 no error comes, so p_i = 3/i and s_i
        // fall at every row: each is the new minimum, nothing is reported.
        // Row 100: p = 0.03, s = sqrt(0.03 · 0.97 / 100) = 0.017059, so
        //   warning level p_min + 2 s_min = 0.064117, drift level p_min + 3 s_min = 0.081176.
        // Row 101: p = 4/101 = 0.039604, s = 0.019406, p + s = 0.059010  in control
        // Row 102: p = 5/102 = 0.049020, s = 0.021378, p + s = 0.070398  ≥ 0.064117: warning
        // Row 103: p = 6/103 = 0.058252, s = 0.023078, p + s = 0.081331  ≥ 0.081176: drift
        let seq = bits(&[(true, 3), (false, 97), (true, 3)]);
        let mut d = Ddm::new(DdmParams::default());
        assert_eq!(run(&mut d, &seq[..100]), vec![]);
        let (p_min, s_min) = d.minimum().expect("a minimum");
        assert!(
            close(p_min, 0.03) && close(s_min, 0.017059),
            "{p_min} {s_min}"
        );
        assert_eq!(d.update(true), None);
        assert_eq!(d.update(true), Some(Warning));
        assert_eq!(d.update(true), Some(Drift));
        // The alert can still quote the rate that raised it.
        assert!(close(d.estimate(), 6.0 / 103.0));

        // After a drift DDM starts over (a new context): the same sequence
        // gives the same alarms, 103 rows later.
        let mut twice = seq.clone();
        twice.extend(&seq);
        let mut d = Ddm::new(DdmParams::default());
        assert_eq!(
            run(&mut d, &twice),
            vec![(102, Warning), (103, Drift), (205, Warning), (206, Drift)]
        );
    }

    #[test]
    fn ddm_levels_are_configurable() {
        // Same sequence, levels 1.5 and 2.5, from p_min = 0.03, s_min = 0.017059:
        // warning at p + s ≥ 0.03 + 1.5 · 0.017059 = 0.055589,
        // drift at p + s ≥ 0.03 + 2.5 · 0.017059 = 0.072648.
        // Row 101: 0.059010 warning; row 102: 0.070398 warning; row 103: 0.081331 drift.
        let seq = bits(&[(true, 3), (false, 97), (true, 3)]);
        let mut d = Ddm::new(DdmParams {
            warning_level: 1.5,
            drift_level: 2.5,
            min_rows: 30,
        });
        assert_eq!(
            run(&mut d, &seq),
            vec![(101, Warning), (102, Warning), (103, Drift)]
        );
    }

    #[test]
    fn ddm_ignores_a_zero_deviation_minimum() {
        // 40 right rows: p = s = 0 from row 30 to 40, never a minimum. Row 41
        // is the first error: p = 1/41 = 0.024390, s = sqrt(p(1 − p)/41) =
        // 0.024091 becomes the first minimum, in control. Had s_min = 0 been
        // kept, p + s ≥ p_min + 3 · 0 would have been a drift at row 41.
        let mut d = Ddm::new(DdmParams::default());
        let seq = bits(&[(false, 40), (true, 1)]);
        assert_eq!(run(&mut d, &seq), vec![]);
        let (p_min, s_min) = d.minimum().expect("a minimum");
        assert!(close(p_min, 0.024390) && close(s_min, 0.024091));
    }
}
