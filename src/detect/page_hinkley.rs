//! The Page-Hinkley test for an increase of the error rate.

use serde::{Deserialize, Serialize};

use super::{Detector, Severity};

/// Parameters of [`PageHinkley`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkleyParams {
    /// δ: the increase of the error rate that is tolerated (magnitude).
    pub delta: f64,
    /// λ: drift when `PH_T > λ`.
    pub lambda: f64,
    /// Forgetting factor of the cumulative sum; 1 = none.
    pub alpha: f64,
    /// Warning when `PH_T > warning_fraction · λ`.
    pub warning_fraction: f64,
    /// Rows since the last reset before a level can be reported.
    pub min_rows: u64,
}

impl Default for PageHinkleyParams {
    fn default() -> Self {
        PageHinkleyParams {
            // MOA's defaults; of the settings measured, the one whose false
            // alarms grow least with the error rate.
            delta: 0.005,
            lambda: 50.0,
            alpha: 1.0,
            warning_fraction: 0.5,
            min_rows: 30,
        }
    }
}

/// The Page-Hinkley test for an increase of the error rate.
///
/// E. S. Page, "Continuous Inspection Schemes", *Biometrika* 41(1/2),
/// pp. 100–115, 1954, in the `m_T` / `M_T` form given by J. Gama,
/// I. Žliobaitė, A. Bifet, M. Pechenizkiy, A. Bouchachia, "A Survey on
/// Concept Drift Adaptation", *ACM Computing Surveys* 46(4), article 44,
/// 2014. With `x_t = 1` for an error:
///
/// ```text
/// x̄_t = (1/t) Σ_{s≤t} x_s
/// m_T = Σ_{t≤T} (x_t − x̄_t − δ)      (with forgetting: m_T = α m_{T−1} + x_T − x̄_T − δ)
/// M_T = min_{1≤t≤T} m_t
/// PH_T = m_T − M_T                    drift when PH_T > λ
/// ```
///
/// The survey writes `x̄_T` (the mean at the end) inside the sum; taken
/// literally the sum would be `−Tδ` whatever the data, so the running mean at
/// each row is used, as in MOA's `PageHinkleyDM`. The forgetting factor
/// enters as in MOA too. After a drift the test starts over.
#[derive(Debug, Clone)]
pub struct PageHinkley {
    params: PageHinkleyParams,
    rows: u64,
    mean: f64,
    m: f64,
    m_min: f64,
    reset_pending: bool,
}

impl PageHinkley {
    pub fn new(params: PageHinkleyParams) -> Self {
        PageHinkley {
            params,
            rows: 0,
            mean: 0.0,
            m: 0.0,
            m_min: f64::INFINITY,
            reset_pending: false,
        }
    }

    /// `PH_T = m_T − M_T` (0 before any row).
    pub fn statistic(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.m - self.m_min
        }
    }
}

impl Detector for PageHinkley {
    fn update(&mut self, error: bool) -> Option<Severity> {
        if self.reset_pending {
            self.reset();
        }
        let x = f64::from(u8::from(error));
        self.rows += 1;
        self.mean += (x - self.mean) / self.rows as f64;
        self.m = self.params.alpha * self.m + (x - self.mean - self.params.delta);
        self.m_min = self.m_min.min(self.m);
        if self.rows < self.params.min_rows {
            return None;
        }
        let ph = self.m - self.m_min;
        if ph > self.params.lambda {
            self.reset_pending = true;
            Some(Severity::Drift)
        } else if ph > self.params.warning_fraction * self.params.lambda {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    fn reset(&mut self) {
        *self = PageHinkley::new(self.params.clone());
    }

    fn name(&self) -> &'static str {
        "page_hinkley"
    }

    fn estimate(&self) -> f64 {
        self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::{bits, close, run};
    use crate::detect::Severity::{Drift, Warning};

    fn ph(delta: f64, lambda: f64, alpha: f64, min_rows: u64) -> PageHinkley {
        PageHinkley::new(PageHinkleyParams {
            delta,
            lambda,
            alpha,
            warning_fraction: 0.5,
            min_rows,
        })
    }

    #[test]
    fn page_hinkley_alarm_positions_worked_by_hand() {
        // δ = 0.1, λ = 2 (warning above 1), α = 1. Ten right rows, then errors.
        // Rows 1-10: x̄ = 0, each term −0.1: m_10 = −1 = M_10, PH = 0.
        // Row 11: x̄ = 1/11 = 0.0909, term 1 − 0.0909 − 0.1 = 0.8091, m = −0.1909, PH = 0.8091
        // Row 12: x̄ = 2/12 = 0.1667, term 0.7333, m = 0.5424, PH = 1.5424 > 1: warning
        // Row 13: x̄ = 3/13 = 0.2308, term 0.6692, m = 1.2117, PH = 2.2117 > 2: drift
        let mut d = ph(0.1, 2.0, 1.0, 1);
        let seq = bits(&[(false, 10), (true, 3)]);
        assert_eq!(run(&mut d, &seq), vec![(12, Warning), (13, Drift)]);
        assert!(close(d.statistic(), 2.2117) && close(d.estimate(), 3.0 / 13.0));
        // Then the test starts over. Its first row is an error: x̄ = 1, term
        // 1 − 1 − 0.1 = −0.1 = m = M. Every further error keeps x − x̄ = 0,
        // so m falls by δ per row and PH stays 0.
        assert_eq!(run(&mut d, &[true; 50]), vec![]);
        assert_eq!(d.statistic(), 0.0);
    }

    #[test]
    fn page_hinkley_waits_for_min_rows() {
        // As above with min_rows = 20: PH passes λ at row 13 but nothing may be
        // reported before row 20, where
        //   m_20 = −1 + Σ_{k=1..10} (0.9 − k/(10 + k)) = −1 + 9 − 3.3123 = 4.6877
        // (Σ k/(10+k) = 1/11 + 2/12 + … + 10/20 = 3.3123), PH = 5.6877 > 2.
        let mut d = ph(0.1, 2.0, 1.0, 20);
        let seq = bits(&[(false, 10), (true, 10)]);
        assert_eq!(run(&mut d, &seq), vec![(20, Drift)]);
    }

    #[test]
    fn page_hinkley_forgetting_factor_bounds_the_sum() {
        // δ = 0, λ = 1.5 (warning above 0.75); ten right rows (m = M = 0), then errors.
        // α = 1:   m_11 = 1 − 1/11 = 0.9091 (warning), m_12 = 0.9091 + 1 − 2/12 = 1.7424 > 1.5: drift.
        // α = 0.5: m_11 = 0.9091, m_12 = 0.4545 + 0.8333 = 1.2879,
        //          m_13 = 0.6439 + 0.7692 = 1.4132, m_14 = 0.7066 + 0.7143 = 1.4209,
        //          m_15 = 0.7104 + 0.6667 = 1.3771, and falling as x̄ rises:
        //          warnings at rows 11-20, never a drift.
        let seq = bits(&[(false, 10), (true, 10)]);
        let mut d = ph(0.0, 1.5, 1.0, 1);
        assert_eq!(run(&mut d, &seq), vec![(11, Warning), (12, Drift)]);
        let mut d = ph(0.0, 1.5, 0.5, 1);
        let got = run(&mut d, &seq);
        assert_eq!(got, (11..=20).map(|r| (r, Warning)).collect::<Vec<_>>());
    }
}
