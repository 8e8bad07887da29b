//! Test helpers shared by the detectors' tests, and the tests every
//! detector must pass.

use super::Severity::{Drift, Warning};
use super::*;

/// Feeds `bits`; returns (1-based row, level) for every row that reported one.
pub(super) fn run(det: &mut dyn Detector, bits: &[bool]) -> Vec<(usize, Severity)> {
    bits.iter()
        .enumerate()
        .filter_map(|(i, &e)| det.update(e).map(|s| (i + 1, s)))
        .collect()
}

pub(super) fn bits(parts: &[(bool, usize)]) -> Vec<bool> {
    parts.iter().flat_map(|&(b, n)| vec![b; n]).collect()
}

/// Equal to the 4 to 6 decimals the hand arithmetic quotes.
pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-5
}

fn small_specs() -> Vec<DetectorSpec> {
    vec![
        DetectorSpec::Threshold(ThresholdParams {
            window: 50,
            ..ThresholdParams::default()
        }),
        DetectorSpec::Ddm(DdmParams::default()),
        DetectorSpec::PageHinkley(PageHinkleyParams::default()),
        DetectorSpec::Adwin(AdwinParams::default()),
    ]
}

#[test]
fn reset_forgets_the_stream() {
    let sc = Scenario {
        drift_at: 2_000,
        after: 2_000,
        ..Scenario::abrupt(REFERENCE_ERROR, 0.3)
    };
    let seq: Vec<bool> = sc.stream(11).collect();
    for spec in small_specs() {
        let mut fresh = spec.build(Some(REFERENCE_ERROR));
        let want = run(fresh.as_mut(), &seq);
        assert!(want.iter().any(|&(_, s)| s == Drift), "{spec}");
        let mut used = spec.build(Some(REFERENCE_ERROR));
        run(used.as_mut(), &seq[..2_500]);
        used.reset();
        assert_eq!(used.estimate(), 0.0, "{spec}");
        assert_eq!(run(used.as_mut(), &seq), want, "{spec}");
        assert_eq!(used.name(), spec.kind());
    }
}

#[test]
fn warning_comes_before_drift() {
    // On the way up to the drift level each statistic crosses the warning
    // level first: a row moves PH_T by at most 1 (the warning band is
    // λ/2 = 10 wide), the window's accuracy by 1/window, and DDM's p + s
    // by about 1/i (small next to s_min once many rows are in). So the
    // row before the detection of a real drift reports a warning, unless
    // it is the first row the detector may report after a reset (a full
    // window, min_rows). ADWIN has no warning level. Early after a reset
    // one DDM row can cross both levels, so false alarms are not checked.
    let sc = Scenario::abrupt(REFERENCE_ERROR, 0.15);
    for spec in &small_specs()[..3] {
        let first = match spec {
            DetectorSpec::Threshold(p) => p.window as u64,
            DetectorSpec::Ddm(p) => p.min_rows,
            DetectorSpec::PageHinkley(p) => p.min_rows,
            DetectorSpec::Adwin(_) => unreachable!(),
        };
        for seed in 0..30 {
            let mut d = spec.build(Some(REFERENCE_ERROR));
            let (mut previous, mut since_reset) = (None, 0);
            for (row, e) in (0u64..).zip(sc.stream(seed)) {
                let level = d.update(e);
                since_reset += 1;
                if level == Some(Drift) && row < sc.drift_at {
                    d.reset();
                    since_reset = 0;
                } else if level == Some(Drift) {
                    if since_reset > first {
                        assert_eq!(previous, Some(Warning), "{spec} seed {seed} row {row}");
                    }
                    break;
                }
                previous = level;
            }
        }
    }
}
