//! Validation: the impossible values of a parsed policy, one validator per
//! section, every finding a (dotted key, message) pair.

use super::{FeatureSpec, Metric, Policy, ServedProbability, WeightingKind};

impl Policy {
    /// Impossible values, as (dotted key, message) pairs.
    ///
    /// The validators run in this order, which is the order of findings that
    /// `Policy::parse` cannot place apart (same line and column, or none).
    pub(super) fn semantic_errors(&self) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
        self.check_data_columns(&mut err);
        self.check_weighting_columns(&mut err);
        self.check_data(&mut err);
        self.check_model(&mut err);
        self.check_training(&mut err);
        self.check_monitor(&mut err);
        self.check_schedule(&mut err);
        self.check_update(&mut err);
        self.check_registry(&mut err);
        self.check_state(&mut err);
        self.check_log(&mut err);
        self.check_service(&mut err);
        self.check_metrics(&mut err);
        errs
    }

    /// `[data]`: the feature, label and other named columns do not overlap.
    fn check_data_columns(&self, err: &mut impl FnMut(&str, String)) {
        match &self.data.features {
            FeatureSpec::List(list) => {
                if list.is_empty() {
                    err(
                        "data.features",
                        "must name at least one feature column".into(),
                    );
                }
                let mut seen = std::collections::HashSet::new();
                for f in list {
                    if f.is_empty() {
                        err("data.features", "a feature column name is empty".into());
                    } else if !seen.insert(f) {
                        err("data.features", format!("column {f:?} is listed twice"));
                    }
                    if *f == self.data.label {
                        err(
                            "data.features",
                            format!("column {f:?} is the label and cannot also be a feature"),
                        );
                    }
                }
            }
            FeatureSpec::Pattern(p) => {
                // The label never counts as a feature of a pattern.
                if p.is_empty() {
                    err("data.features", "the feature pattern is empty".into());
                }
            }
        }
        let probability_columns = self
            .data
            .probability
            .as_ref()
            .map(ServedProbability::columns)
            .unwrap_or_default();
        let optional_columns = [
            ("data.timestamp", self.data.timestamp.as_ref()),
            ("data.weight", self.data.weight.as_ref()),
            ("data.row_id", self.data.row_id.as_ref()),
            ("data.prediction", self.data.prediction.as_ref()),
        ]
        .into_iter()
        .chain(
            probability_columns
                .iter()
                .map(|c| ("data.probability", Some(c))),
        );
        for (key, col) in optional_columns {
            if let Some(c) = col {
                if *c == self.data.label {
                    err(key, format!("column {c:?} is the label"));
                }
                if let FeatureSpec::List(list) = &self.data.features {
                    if list.contains(c) {
                        err(key, format!("column {c:?} is also listed as a feature"));
                    }
                }
            }
        }
    }

    /// `[update.weighting]`: the data columns the weighting needs are named.
    fn check_weighting_columns(&self, err: &mut impl FnMut(&str, String)) {
        if self.update.weighting.kind == WeightingKind::Column && self.data.weight.is_none() {
            err(
                "update.weighting.kind",
                "\"column\" needs data.weight to name the weight column".into(),
            );
        }
        if self.update.weighting.half_life_seconds.is_some() && self.data.timestamp.is_none() {
            err(
                "update.weighting.half_life_seconds",
                "needs data.timestamp to name the event-time column".into(),
            );
        }
    }

    /// `[data]`: served probabilities and class names fit `model.classes`;
    /// limits of the ingestion settings.
    fn check_data(&self, err: &mut impl FnMut(&str, String)) {
        match &self.data.probability {
            Some(ServedProbability::PositiveClass(_)) if self.model.classes != 2 => err(
                "data.probability",
                format!(
                    "one column is the probability of class 1 of a binary model, but model.classes is {}; name one column per class",
                    self.model.classes
                ),
            ),
            Some(ServedProbability::PerClass(list))
                if list.len() as i64 != self.model.classes =>
            {
                err(
                    "data.probability",
                    format!(
                        "names {} columns but model.classes is {}",
                        list.len(),
                        self.model.classes
                    ),
                )
            }
            _ => {}
        }
        if self.data.label.is_empty() {
            err("data.label", "must name the label column".into());
        }
        if self.data.poll_interval_ms == 0 {
            err("data.poll_interval_ms", "must be at least 1".into());
        }
        if self.data.initial_rows < 10 {
            err("data.initial_rows", "must be at least 10".into());
        }
        if self.data.file_pattern.is_empty() {
            err("data.file_pattern", "must not be empty".into());
        }
        if self.data.batch_rows == 0 {
            err("data.batch_rows", "must be at least 1".into());
        }
        if !self.data.classes.is_empty() {
            if self.data.classes.len() as i64 != self.model.classes {
                err(
                    "data.classes",
                    format!(
                        "names {} classes but model.classes is {}",
                        self.data.classes.len(),
                        self.model.classes
                    ),
                );
            }
            let mut seen = std::collections::HashSet::new();
            for c in &self.data.classes {
                if !seen.insert(c) {
                    err("data.classes", format!("class {c:?} is listed twice"));
                }
            }
        }
    }

    /// `[model]`.
    fn check_model(&self, err: &mut impl FnMut(&str, String)) {
        if self.model.hidden.is_empty() {
            err(
                "model.hidden",
                "needs at least one hidden layer width".into(),
            );
        }
        for (i, w) in self.model.hidden.iter().enumerate() {
            if *w <= 0 {
                err(
                    "model.hidden",
                    format!("hidden layer {i} has width {w}; widths must be at least 1"),
                );
            }
        }
        if self.model.classes < 2 {
            err(
                "model.classes",
                format!(
                    "is {}; a classifier needs at least 2 classes",
                    self.model.classes
                ),
            );
        }
    }

    /// `[training]` and `[training.early_stopping]`.
    fn check_training(&self, err: &mut impl FnMut(&str, String)) {
        let t = &self.training;
        check_rate(err, "training.learning_rate", t.learning_rate);
        if !(0.0..1.0).contains(&t.momentum) {
            err(
                "training.momentum",
                format!("is {}; expected a value in [0, 1)", t.momentum),
            );
        }
        if t.epochs == 0 {
            err("training.epochs", "must be at least 1".into());
        }
        if t.batch_size == 0 {
            err("training.batch_size", "must be at least 1".into());
        }
        if t.threads == 0 {
            err("training.threads", "must be at least 1".into());
        }
        let es = &t.early_stopping;
        if !(0.0..0.9).contains(&es.validation_fraction) {
            err(
                "training.early_stopping.validation_fraction",
                format!(
                    "is {}; expected a value in [0, 0.9) (0 turns early stopping off)",
                    es.validation_fraction
                ),
            );
        }
        if es.patience == 0 {
            err(
                "training.early_stopping.patience",
                "must be at least 1".into(),
            );
        }
        if !(es.min_delta.is_finite() && es.min_delta >= 0.0) {
            err(
                "training.early_stopping.min_delta",
                format!("is {}; expected a finite value >= 0", es.min_delta),
            );
        }
    }

    /// `[monitor]`, `[monitor.input]` and each detector.
    fn check_monitor(&self, err: &mut impl FnMut(&str, String)) {
        if self.monitor.window < 10 {
            err("monitor.window", "must be at least 10 rows".into());
        }
        if !(0.0..1.0).contains(&self.monitor.recovery_margin) {
            err(
                "monitor.recovery_margin",
                format!(
                    "is {}; expected a value in [0, 1)",
                    self.monitor.recovery_margin
                ),
            );
        }
        if self.monitor.time_window_seconds > 0 && self.monitor.time_window_max_rows == 0 {
            err(
                "monitor.time_window_max_rows",
                "must be at least 1 when monitor.time_window_seconds is set".into(),
            );
        }
        let input = &self.monitor.input;
        if input.window < 50 {
            err("monitor.input.window", "must be at least 50 rows".into());
        }
        if input.check_every == 0 {
            err("monitor.input.check_every", "must be at least 1 row".into());
        }
        if input.psi_threshold.is_nan() || input.psi_threshold <= 0.0 {
            err(
                "monitor.input.psi_threshold",
                format!("is {}; expected a positive number", input.psi_threshold),
            );
        }
        if !(input.ks_p_value > 0.0 && input.ks_p_value < 1.0) {
            err(
                "monitor.input.ks_p_value",
                format!("is {}; expected a value in (0, 1)", input.ks_p_value),
            );
        }
        for (i, d) in self.monitor.detectors.iter().enumerate() {
            for (key, message) in d.validate() {
                err(&format!("monitor.detectors[{i}].{key}"), message);
            }
        }
    }

    /// `[schedule]`.
    fn check_schedule(&self, err: &mut impl FnMut(&str, String)) {
        if let Err(e) = super::parse_cron(&self.schedule.cron) {
            err("schedule.cron", e.to_string());
        }
        if self.schedule.timezone.parse::<chrono_tz::Tz>().is_err() {
            err(
                "schedule.timezone",
                format!(
                    "unknown time zone {:?}; expected an IANA name such as \"UTC\" or \"Europe/Paris\"",
                    self.schedule.timezone
                ),
            );
        }
    }

    /// `[update]` and its strategy settings.
    fn check_update(&self, err: &mut impl FnMut(&str, String)) {
        let u = &self.update;
        if u.candidates.is_empty() {
            err(
                "update.candidates",
                "must name at least one strategy".into(),
            );
        }
        check_rate(
            err,
            "update.fine_tune.learning_rate",
            u.fine_tune.learning_rate,
        );
        for &lr in &u.fine_tune.lr_grid {
            check_rate(err, "update.fine_tune.lr_grid", lr);
        }
        if u.fine_tune.epochs == 0 {
            err("update.fine_tune.epochs", "must be at least 1".into());
        }
        check_rate(err, "update.online.learning_rate", u.online.learning_rate);
        if u.online.epochs == 0 {
            err("update.online.epochs", "must be at least 1".into());
        }
        if u.online.window_rows == 0 {
            err("update.online.window_rows", "must be at least 1 row".into());
        }
        if u.online.min_rows < 2 {
            err(
                "update.online.min_rows",
                format!(
                    "is {}; a paired comparison needs at least 2 rows",
                    u.online.min_rows
                ),
            );
        }
        if u.ensemble.max_members < 2 {
            err(
                "update.ensemble.max_members",
                format!(
                    "is {}; an ensemble needs at least 2 members",
                    u.ensemble.max_members
                ),
            );
        }
        if u.graft.hidden.iter().any(|&w| w <= 0) {
            err("update.graft.hidden", "widths must be at least 1".into());
        }
        if let Some(lr) = u.graft.learning_rate {
            check_rate(err, "update.graft.learning_rate", lr);
        }
        if u.graft.epochs == Some(0) {
            err("update.graft.epochs", "must be at least 1".into());
        }
        if !(u.sample.fraction > 0.0 && u.sample.fraction <= 1.0) {
            err(
                "update.sample.fraction",
                format!("is {}; expected a value in (0, 1]", u.sample.fraction),
            );
        }
        if !(u.weighting.half_life_rows.is_finite() && u.weighting.half_life_rows > 0.0) {
            err(
                "update.weighting.half_life_rows",
                format!(
                    "is {}; expected a positive number",
                    u.weighting.half_life_rows
                ),
            );
        }
        if let Some(h) = u.weighting.half_life_seconds {
            if !(h.is_finite() && h > 0.0) {
                err(
                    "update.weighting.half_life_seconds",
                    format!("is {h}; expected a positive number"),
                );
            }
        }
        if u.metric == Metric::Auc && self.model.classes != 2 {
            err(
                "update.metric",
                "auc is defined for binary models only (model.classes = 2)".into(),
            );
        }
        if !(u.holdout_fraction > 0.0 && u.holdout_fraction < 1.0) {
            err(
                "update.holdout_fraction",
                format!("is {}; expected a value in (0, 1)", u.holdout_fraction),
            );
        }
        if u.min_holdout_rows == 0 {
            err("update.min_holdout_rows", "must be at least 1".into());
        }
        if u.rollback.watch_rows == 0 {
            err(
                "update.rollback.watch_rows",
                "must be at least 1 row".into(),
            );
        }
        if !(u.rollback.margin.is_finite() && u.rollback.margin >= 0.0) {
            err(
                "update.rollback.margin",
                format!("is {}; expected a non-negative number", u.rollback.margin),
            );
        }
        let for_holdout = (u.min_holdout_rows as f64 / u.holdout_fraction).ceil();
        if u.every_rows > 0 && (u.every_rows as f64) < for_holdout && u.holdout_fraction > 0.0 {
            err(
                "update.every_rows",
                format!(
                    "is {}; a continual update needs at least {for_holdout} new rows for update.min_holdout_rows = {} at update.holdout_fraction = {} (or 0 for none)",
                    u.every_rows, u.min_holdout_rows, u.holdout_fraction
                ),
            );
        }
        if !(u.confidence >= 0.5 && u.confidence < 1.0) {
            err(
                "update.confidence",
                format!(
                    "is {}; expected a value in [0.5, 1) (0.5: no evidence beyond the point estimates)",
                    u.confidence
                ),
            );
        }
        if !(u.min_improvement.is_finite() && u.min_improvement >= 0.0) {
            err(
                "update.min_improvement",
                format!("is {}; expected a non-negative number", u.min_improvement),
            );
        }
        if u.max_new_rows < u.min_new_rows.max(1) {
            err(
                "update.max_new_rows",
                format!(
                    "is {}; must be at least update.min_new_rows ({})",
                    u.max_new_rows, u.min_new_rows
                ),
            );
        }
    }

    /// `[registry]`.
    fn check_registry(&self, err: &mut impl FnMut(&str, String)) {
        if self.registry.dir.as_os_str().is_empty() {
            err("registry.dir", "must not be empty".into());
        }
    }

    /// `[state]`.
    fn check_state(&self, err: &mut impl FnMut(&str, String)) {
        if self.state.dir.as_os_str().is_empty() {
            err("state.dir", "must not be empty".into());
        }
    }

    /// `[log]`.
    fn check_log(&self, err: &mut impl FnMut(&str, String)) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            err("log.filter", format!("invalid filter: {e}"));
        }
    }

    /// `[service]`.
    fn check_service(&self, err: &mut impl FnMut(&str, String)) {
        if self.service.stop_timeout_seconds > 3600 {
            err(
                "service.stop_timeout_seconds",
                format!(
                    "is {}; expected at most 3600 (and below the unit's TimeoutStopSec)",
                    self.service.stop_timeout_seconds
                ),
            );
        }
    }

    /// `[metrics]`.
    fn check_metrics(&self, err: &mut impl FnMut(&str, String)) {
        if let Some(listen) = &self.metrics.listen {
            match listen.parse::<std::net::SocketAddr>() {
                Err(_) => err(
                    "metrics.listen",
                    format!("{listen:?} is not an address; expected \"host:port\" with an IP, e.g. \"127.0.0.1:9464\""),
                ),
                Ok(a) if !a.ip().is_loopback() && !self.metrics.allow_non_loopback => err(
                    "metrics.listen",
                    format!("{listen:?} is not a loopback address; set metrics.allow_non_loopback = true to serve metrics beyond this host"),
                ),
                Ok(_) => {}
            }
        }
    }
}

fn check_rate(err: &mut impl FnMut(&str, String), key: &str, v: f64) {
    if !(v.is_finite() && v > 0.0 && v <= 10.0) {
        err(
            key,
            format!("is {v}; expected a positive number no larger than 10"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BadRows;

    #[test]
    fn served_columns_are_not_features_and_fit_the_classes() {
        let p = Policy::parse(
            "[data]\nfeatures = \"f*\"\nprediction = \"fp\"\nprobability = \"f_p1\"\n",
        )
        .unwrap();
        let columns = ["f0", "fp", "f_p1", "f1", "label"].map(String::from);
        assert_eq!(p.select_features(&columns), ["f0", "f1"]);
        // One probability column is class 1's: binary models only.
        let diags = Policy::parse(
            "[model]\nclasses = 3\n[data]\nfeatures = [\"a\"]\nprobability = \"p\"\n",
        )
        .unwrap_err();
        assert!(
            diags
                .iter()
                .any(|d| d.key == "data.probability" && d.line == Some(5)),
            "{diags:?}"
        );
        let diags = Policy::parse(
            "[model]\nclasses = 3\n[data]\nfeatures = [\"a\"]\nprobability = [\"p0\", \"p1\"]\n",
        )
        .unwrap_err();
        assert!(
            diags.iter().any(|d| d.key == "data.probability"
                && d.message.contains("names 2 columns but model.classes is 3")),
            "{diags:?}"
        );
        let diags =
            Policy::parse("[data]\nfeatures = [\"a\", \"b\"]\nprediction = \"b\"\n").unwrap_err();
        assert!(
            diags.iter().any(|d| d.key == "data.prediction"),
            "{diags:?}"
        );
    }

    #[test]
    fn row_id_is_neither_label_nor_feature() {
        let p = Policy::parse("[data]\nfeatures = \"f*\"\nrow_id = \"fid\"\n").unwrap();
        let columns = ["f0", "fid", "f1", "label"].map(String::from);
        assert_eq!(p.select_features(&columns), ["f0", "f1"]);
        let diags =
            Policy::parse("[data]\nfeatures = [\"a\", \"b\"]\nrow_id = \"b\"\n").unwrap_err();
        assert!(
            diags
                .iter()
                .any(|d| d.key == "data.row_id" && d.line == Some(3)),
            "{diags:?}"
        );
        let diags = Policy::parse("[data]\nfeatures = [\"a\"]\nrow_id = \"label\"\n").unwrap_err();
        assert!(diags.iter().any(|d| d.key == "data.row_id"), "{diags:?}");
    }

    #[test]
    fn early_stopping_settings_are_checked() {
        let text = "\
[data]
features = [\"x\"]
[training.early_stopping]
validation_fraction = 0.95
patience = 0
min_delta = -1.0
";
        let diags = Policy::parse(text).unwrap_err();
        let lines: Vec<_> = diags.iter().map(|d| (d.line, d.key.as_str())).collect();
        for (line, key) in [
            (4, "training.early_stopping.validation_fraction"),
            (5, "training.early_stopping.patience"),
            (6, "training.early_stopping.min_delta"),
        ] {
            assert!(lines.contains(&(Some(line), key)), "{key}: {diags:?}");
        }
        let off = Policy::parse(
            "[data]\nfeatures = [\"x\"]\n[training.early_stopping]\nvalidation_fraction = 0.0\n",
        )
        .unwrap();
        assert_eq!(off.training.early_stopping.validation_rows(1_000_000), 0);
        let on = Policy::parse("[data]\nfeatures = [\"x\"]\n").unwrap();
        assert_eq!(on.training.early_stopping.validation_rows(1000), 100);
        assert_eq!(on.training.early_stopping.validation_rows(400), 0);
        assert_eq!(on.update.sample.max_rows, 10_000);
    }

    #[test]
    fn strategy_settings_are_validated() {
        let diags = Policy::parse(
            "[data]\nfeatures = [\"a\"]\n[update]\nmetric = \"auc\"\n\
             [update.fine_tune]\nlr_grid = [0.01, -1.0]\n[update.ensemble]\nmax_members = 1\n\
             [update.sample]\nfraction = 0.0\n[update.weighting]\nkind = \"column\"\n\
             [model]\nclasses = 3\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = diags.iter().map(|d| d.key.as_str()).collect();
        for k in [
            "update.metric",
            "update.fine_tune.lr_grid",
            "update.ensemble.max_members",
            "update.sample.fraction",
            "update.weighting.kind",
        ] {
            assert!(keys.contains(&k), "{k} not reported: {diags:?}");
        }
        // Each is pinned to its line.
        assert!(diags.iter().all(|d| d.line.is_some()), "{diags:?}");
    }

    #[test]
    fn detector_settings_are_checked_and_located() {
        let diags = Policy::parse(
            "[data]\nfeatures = [\"a\"]\n[monitor]\n\
             detectors = [{ kind = \"ddm\" },\n  { kind = \"adwin\", delta = 2.0 }]\n",
        )
        .unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].key, "monitor.detectors[1].delta");
        assert_eq!(diags[0].line, Some(5));
        let diags = Policy::parse(
            "[data]\nfeatures = [\"a\"]\n[monitor]\ndetectors = [{ kind = \"magic\" }]\n",
        )
        .unwrap_err();
        assert_eq!(diags[0].line, Some(4), "{diags:?}");
        assert!(Policy::parse("[data]\nfeatures = [\"a\"]\n[monitor]\ndetectors = []\n").is_ok());
    }

    #[test]
    fn ingestion_settings_are_validated() {
        let diags = Policy::parse(
            "[data]\nfeatures = [\"a\"]\nclasses = [\"x\", \"x\", \"y\"]\n\
             batch_rows = 0\nfile_pattern = \"\"\nbad_rows = \"ignore\"\n",
        )
        .unwrap_err();
        let found: Vec<(&str, Option<usize>)> =
            diags.iter().map(|d| (d.key.as_str(), d.line)).collect();
        for (k, line) in [
            ("data.classes", 3),
            ("data.batch_rows", 4),
            ("data.file_pattern", 5),
            ("data.bad_rows", 6),
        ] {
            assert!(found.contains(&(k, Some(line))), "{k}: {diags:?}");
        }
        // Two names for two classes, and the drop rule, are fine.
        let p = Policy::parse(
            "[data]\nfeatures = [\"a\"]\nclasses = [\"no\", \"yes\"]\nbad_rows = \"drop\"\n",
        )
        .unwrap();
        assert_eq!(p.data.bad_rows, BadRows::Drop);
    }
}
