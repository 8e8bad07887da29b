//! The policy file: parsed once, validated completely, then handed around as
//! typed values.
//!
//! Parsing is done in two passes so that *every* mistake is reported at once
//! (Vector-style) with the file, line and column (ripgrep-style):
//!
//! 1. the TOML is parsed into a span-carrying tree (`toml::de::DeTable`);
//! 2. each key of each section is deserialized on its own, so one wrong type
//!    or unknown key does not hide the next; keys that fail are dropped and
//!    the section is deserialized from the keys that remain;
//! 3. the typed policy is checked for impossible values, and every finding is
//!    mapped back to the span of the key that caused it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::detect::DetectorSpec;
use crate::update::StrategyName;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line, when the problem can be pinned to a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters).
    pub column: Option<usize>,
    /// Dotted key path, e.g. `training.learning_rate`.
    pub key: String,
    pub message: String,
}

/// Every problem found in one policy file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_diagnostics(path, diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// One line per problem, each naming the file (and line:column).
    pub fn messages(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { path, diagnostics } => diagnostics
                .iter()
                .map(|d| DiagnosticAt { path, d }.to_string())
                .collect(),
        }
    }
}

fn render_diagnostics(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let mut out = format!(
        "policy file {} has {} error{}:",
        path.display(),
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        out.push_str(&format!("\n  {}", DiagnosticAt { path, d }));
    }
    out
}

struct DiagnosticAt<'a> {
    path: &'a Path,
    d: &'a Diagnostic,
}

impl fmt::Display for DiagnosticAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.d;
        match (d.line, d.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: ", self.path.display(), l, c)?,
            _ => write!(f, "{}: ", self.path.display())?,
        }
        if d.key.is_empty() {
            write!(f, "{}", d.message)
        } else {
            write!(f, "{}: {}", d.key, d.message)
        }
    }
}

// ---------------------------------------------------------------------------
// The typed policy. Every section has defaults so that a minimal file works;
// unknown keys are rejected (`deny_unknown_fields`).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub training: TrainingConfig,
    pub monitor: MonitorConfig,
    pub schedule: ScheduleConfig,
    pub update: UpdateConfig,
    pub registry: RegistryConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    pub service: ServiceConfig,
    pub metrics: MetricsConfig,
}

/// Feature columns: an explicit list, or one glob pattern (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of column names or a glob pattern string"
)]
pub enum FeatureSpec {
    List(Vec<String>),
    Pattern(String),
}

/// The served probability columns: one (binary models: the probability of
/// class 1) or one per class, in class order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a column name (binary models: P(class 1)) or a list of one column per class"
)]
pub enum ServedProbability {
    PositiveClass(String),
    PerClass(Vec<String>),
}

impl ServedProbability {
    /// The columns, in class order (one column: class 1's probability).
    pub fn columns(&self) -> Vec<String> {
        match self {
            ServedProbability::PositiveClass(c) => vec![c.clone()],
            ServedProbability::PerClass(list) => list.clone(),
        }
    }
}

impl Default for FeatureSpec {
    fn default() -> Self {
        FeatureSpec::List(Vec::new())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub dir: PathBuf,
    pub label: String,
    pub features: FeatureSpec,
    /// Columns matched by a `features` pattern that are not features.
    pub exclude: Vec<String>,
    /// Optional event-time column (a datetime, or Unix seconds as a
    /// number): drives time-based recency weights.
    pub timestamp: Option<String>,
    /// Optional per-row instance weight column (non-negative numbers).
    pub weight: Option<String>,
    /// Optional row-id column (integers or strings): checked to exist and
    /// named in bad-row messages.
    pub row_id: Option<String>,
    /// Optional: the class the deployed model served for each row (an
    /// integer class, or one of `classes`). With it (or `probability`) the
    /// monitor judges what was served instead of re-scoring the rows.
    pub prediction: Option<String>,
    /// Optional: the probabilities that were served.
    pub probability: Option<ServedProbability>,
    /// How often the directory is rescanned, in milliseconds.
    pub poll_interval_ms: u64,
    /// When the registry is empty, version 1 is trained on this many rows.
    pub initial_rows: usize,
    /// Also look in subdirectories (hidden and `_`-prefixed ones skipped).
    pub recursive: bool,
    /// Glob (`*`, `?`) a file name must match to be read.
    pub file_pattern: String,
    /// Read a data file that is a symlink to a file outside the data
    /// directory. Off: such a file is quarantined (symlinks within the
    /// directory are always read).
    pub follow_symlinks: bool,
    /// A file is read only once its size and modification time have been
    /// unchanged this long (for producers that write in place); 0 takes a
    /// file as soon as its Parquet footer is valid.
    pub settle_ms: u64,
    /// A file without a valid Parquet footer counts as still being written
    /// until it has been unchanged this long; then it is quarantined.
    pub incomplete_after_ms: u64,
    /// Rows with null, NaN or infinite features (or weights), and labels
    /// outside the classes: quarantine the whole file, or drop the rows.
    pub bad_rows: BadRows,
    /// String labels: the class names in class order (label `classes[i]` is
    /// class i). Empty: labels are integers `0..model.classes`.
    pub classes: Vec<String>,
    /// Large files are read in batches of about this many rows (whole row
    /// groups where they fit), so memory does not grow with the file.
    pub batch_rows: usize,
}

/// What to do with a row that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRows {
    Quarantine,
    Drop,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("/var/lib/driftd/incoming"),
            label: "label".into(),
            features: FeatureSpec::default(),
            exclude: Vec::new(),
            timestamp: None,
            weight: None,
            row_id: None,
            prediction: None,
            probability: None,
            poll_interval_ms: 1000,
            initial_rows: 1000,
            recursive: false,
            file_pattern: "*.parquet".into(),
            follow_symlinks: false,
            settle_ms: 0,
            incomplete_after_ms: 5000,
            bad_rows: BadRows::Quarantine,
            classes: Vec::new(),
            batch_rows: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Gelu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    HeNormal,
    XavierUniform,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub hidden: Vec<i64>,
    pub activation: Activation,
    pub init: Init,
    /// Number of classes; labels are integers `0..classes`. Two means a
    /// binary model with one sigmoid output.
    pub classes: i64,
    /// Standardize inputs with the training rows' mean and std.
    pub standardize: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            hidden: vec![20, 10],
            activation: Activation::Relu,
            init: Init::HeNormal,
            classes: 2,
            standardize: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    pub momentum: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// libtorch intra-op threads; results are bit-identical for a fixed seed
    /// and thread count.
    pub threads: usize,
    pub early_stopping: EarlyStopping,
}

/// `[training.early_stopping]`: every training run (version 1, refits,
/// fine-tuning, grafts) holds out a seeded random share of its rows and
/// stops once their loss has not improved for `patience` epochs, keeping
/// the weights of its best epoch. Bounds the cost of an update on large
/// data, where a few epochs over many rows already converge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStopping {
    /// Share of a run's rows held out to validate on (0: off; every run
    /// trains for all its epochs on all its rows).
    pub validation_fraction: f64,
    /// Epochs without an improvement before the run stops.
    pub patience: usize,
    /// An epoch improves when its validation loss is lower than the best so
    /// far by more than this.
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Held-out rows below this leave early stopping off for the run (too
    /// few to tell an improvement from noise).
    pub const MIN_VALIDATION_ROWS: usize = 50;

    pub const OFF: EarlyStopping = EarlyStopping {
        validation_fraction: 0.0,
        patience: 10,
        min_delta: 1e-4,
    };

    /// For `meta.json` written before early stopping existed.
    pub fn off() -> Self {
        Self::OFF
    }

    /// Rows of `n` held out for validation (0: early stopping is off for a
    /// run of `n` rows).
    pub fn validation_rows(&self, n: usize) -> usize {
        let v = ((n as f64) * self.validation_fraction).round() as usize;
        if v < Self::MIN_VALIDATION_ROWS || v >= n {
            0
        } else {
            v
        }
    }
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            validation_fraction: 0.1,
            ..Self::OFF
        }
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            optimizer: OptimizerKind::Sgd,
            learning_rate: 0.01,
            momentum: 0.9,
            epochs: 150,
            batch_size: 32,
            shuffle: true,
            seed: 1,
            threads: 1,
            early_stopping: EarlyStopping::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Rows in the rolling window the live model's accuracy is reported over.
    pub window: usize,
    /// Drift detectors fed with every row's error (empty: no drift
    /// triggers, only the schedule and manual updates).
    pub detectors: Vec<DetectorSpec>,
    /// A drift episode is over (and its detector re-armed) once the
    /// rolling accuracy over a full window is back within this much of the
    /// baseline.
    pub recovery_margin: f64,
    /// While an episode lasts, the alert is repeated after this many rows
    /// (0: never; only a recovery re-arms the detector).
    pub realert_after_rows: u64,
    /// A new version raises no drift alert before it has scored this many
    /// rows (its detectors still see them).
    pub min_rows_before_alert: u64,
    /// Metrics are also reported over the rows of the last this many
    /// seconds (by the timestamp column, else arrival time; 0: off).
    pub time_window_seconds: u64,
    /// At most this many rows are kept for the time window.
    pub time_window_max_rows: usize,
    /// Input drift: feature distributions against the live version's.
    pub input: InputDriftConfig,
}

/// `[monitor.input]`: input drift without labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputDriftConfig {
    pub enabled: bool,
    /// Recent rows compared with the training distribution.
    pub window: usize,
    /// A comparison runs every this many rows.
    pub check_every: usize,
    /// A feature has moved when its population stability index reaches
    /// this…
    pub psi_threshold: f64,
    /// …or its Kolmogorov–Smirnov p-value is below this divided by the
    /// number of features.
    pub ks_p_value: f64,
    /// Features named in an input alert (the most moved first).
    pub report_features: usize,
    /// Whether an input alert also triggers an update (else it only warns).
    pub trigger_update: bool,
}

impl Default for InputDriftConfig {
    fn default() -> Self {
        InputDriftConfig {
            enabled: true,
            window: 1000,
            check_every: 500,
            psi_threshold: 0.25,
            ks_p_value: 0.001,
            report_features: 3,
            trigger_update: false,
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window: 500,
            detectors: vec![DetectorSpec::default()],
            recovery_margin: 0.02,
            realert_after_rows: 5000,
            min_rows_before_alert: 200,
            time_window_seconds: 3600,
            time_window_max_rows: 100_000,
            input: InputDriftConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub enabled: bool,
    /// Six-field cron (seconds first).
    pub cron: String,
    pub timezone: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            enabled: true,
            cron: "0 0 3 * * Mon".into(),
            timezone: "UTC".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineTuneConfig {
    pub learning_rate: f64,
    pub epochs: usize,
    /// When not empty, each rate is tried and the best on the holdout kept
    /// (the tutorial's advice: find a fine-tuning rate that beats a refit).
    pub lr_grid: Vec<f64>,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        FineTuneConfig {
            learning_rate: 0.001,
            epochs: 100,
            lr_grid: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleMembers {
    /// The live model's members plus the fresh model.
    Grow,
    /// The newest member of each of the last versions in the live model's
    /// lineage (itself, its parent, ...) plus the fresh model.
    LastVersions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// At most this many members; the oldest is dropped beyond it.
    pub max_members: usize,
    pub members: EnsembleMembers,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            max_members: 2,
            members: EnsembleMembers::Grow,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraftData {
    New,
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraftConfig {
    /// Widths of the trainable layers added on top of the frozen hidden
    /// layers (before a new output layer).
    pub hidden: Vec<i64>,
    /// Train the new layers on new rows only or on old + new rows.
    pub data: GraftData,
    /// Defaults to training.learning_rate.
    pub learning_rate: Option<f64>,
    /// Defaults to training.epochs.
    pub epochs: Option<usize>,
}

impl Default for GraftConfig {
    fn default() -> Self {
        GraftConfig {
            hidden: vec![10],
            data: GraftData::New,
            learning_rate: None,
            epochs: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Train on this share of the rows (a seeded random subset).
    pub fraction: f64,
    /// And on at most this many rows (0: no cap).
    pub max_rows: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            fraction: 1.0,
            max_rows: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightingKind {
    /// Every row counts the same.
    None,
    /// A row's weight halves every `half_life_rows` rows (or
    /// `half_life_seconds` of event time) back from the newest row.
    Recency,
    /// The data's weight column (`data.weight`).
    Column,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightingConfig {
    pub kind: WeightingKind,
    pub half_life_rows: f64,
    /// When set, recency is measured in event time (`data.timestamp`)
    /// instead of rows.
    pub half_life_seconds: Option<f64>,
}

impl Default for WeightingConfig {
    fn default() -> Self {
        WeightingConfig {
            kind: WeightingKind::None,
            half_life_rows: 1000.0,
            half_life_seconds: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    LogLoss,
    Auc,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::LogLoss => "log_loss",
            Metric::Auc => "auc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    pub candidates: Vec<StrategyName>,
    /// Settings of the fine-tuning strategies (`continue_*`).
    pub fine_tune: FineTuneConfig,
    pub ensemble: EnsembleConfig,
    pub graft: GraftConfig,
    /// Train every retraining strategy on a sample of its rows.
    pub sample: SampleConfig,
    /// Per-row instance weights in the loss.
    pub weighting: WeightingConfig,
    /// The metric candidates are ranked and promoted on.
    pub metric: Metric,
    /// Share of the newest rows held out for scoring candidates.
    pub holdout_fraction: f64,
    /// No promotion is decided on fewer holdout rows than this.
    pub min_holdout_rows: usize,
    /// A candidate must beat the live model on `metric` by more than this.
    pub min_improvement: f64,
    /// After a drift alert, wait for this many rows past the drift before
    /// training, so the candidates see the new concept.
    pub min_new_rows: usize,
    /// At most this many of the newest rows since the live version are kept.
    pub max_new_rows: usize,
    /// Bounded uniform sample of the rows older models were trained on.
    pub reservoir_rows: usize,
    /// After an update, drift and schedule triggers wait this long.
    pub cooldown_seconds: u64,
    /// At most this many automatic updates start in any 24 hours.
    pub max_updates_per_day: usize,
    /// Automatic rollback of a promotion that scores worse live.
    pub rollback: RollbackConfig,
}

/// `[update.rollback]`: after a promotion the new version is on probation
/// for `watch_rows` rows; if its accuracy on them is below the previous
/// version's rolling accuracy before the promotion by more than `margin`,
/// the daemon makes the previous version live again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollbackConfig {
    pub enabled: bool,
    pub watch_rows: u64,
    pub margin: f64,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        RollbackConfig {
            enabled: true,
            watch_rows: 1000,
            margin: 0.05,
        }
    }
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            candidates: StrategyName::ALL_RETRAINING.to_vec(),
            fine_tune: FineTuneConfig::default(),
            ensemble: EnsembleConfig::default(),
            graft: GraftConfig::default(),
            sample: SampleConfig::default(),
            weighting: WeightingConfig::default(),
            metric: Metric::Accuracy,
            holdout_fraction: 0.2,
            min_holdout_rows: 50,
            min_improvement: 0.0,
            min_new_rows: 500,
            max_new_rows: 100_000,
            reservoir_rows: 20_000,
            cooldown_seconds: 600,
            max_updates_per_day: 24,
            rollback: RollbackConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    pub dir: PathBuf,
    /// Retention: after each promotion keep the newest this-many versions
    /// (plus the live one, the one live before it, and pinned ones); 0 keeps
    /// every version.
    pub keep_last: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            dir: PathBuf::from("/var/lib/driftd/models"),
            keep_last: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("/var/lib/driftd/state"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter; the `RUST_LOG` environment variable wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
        }
    }
}

/// How the daemon behaves as a service (signals, shutdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// On SIGTERM, how long a running update may still finish (and be
    /// promoted) before it is abandoned. Keep below the unit's TimeoutStopSec.
    pub stop_timeout_seconds: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            stop_timeout_seconds: 20,
        }
    }
}

/// The optional Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to serve `GET /metrics` on; off when absent.
    pub listen: Option<String>,
    /// A non-loopback `listen` address is refused unless this is true.
    pub allow_non_loopback: bool,
}

impl MetricsConfig {
    /// The address to listen on, when enabled and valid.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

impl Policy {
    /// Reads, parses and validates a policy file, reporting every problem.
    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(&text).map_err(|diagnostics| ConfigError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })
    }

    /// Parses and validates policy text; relative paths stay relative.
    pub fn parse(text: &str) -> Result<Policy, Vec<Diagnostic>> {
        let lines = LineIndex::new(text);
        let mut diags = Vec::new();
        let (root, syntax_errors) = DeTable::parse_recoverable(text);
        for e in syntax_errors {
            diags.push(lines.diagnostic(e.span(), String::new(), e.message().to_string()));
        }
        let root = root.into_inner();
        let mut clean_root = DeTable::default();
        for (section, value) in root.iter() {
            let name = section.get_ref().to_string();
            if !SECTIONS.contains(&name.as_str()) {
                diags.push(lines.diagnostic(
                    Some(section.span()),
                    name.clone(),
                    format!("unknown section, expected one of: {}", SECTIONS.join(", ")),
                ));
                continue;
            }
            let DeValue::Table(table) = value.get_ref() else {
                diags.push(lines.diagnostic(
                    Some(value.span()),
                    name.clone(),
                    format!(
                        "expected a table [{name}], found {}",
                        value.get_ref().type_str()
                    ),
                ));
                continue;
            };
            let good = match name.as_str() {
                "data" => good_keys::<DataConfig>(&name, table, &lines, &mut diags),
                "model" => good_keys::<ModelConfig>(&name, table, &lines, &mut diags),
                "training" => good_keys::<TrainingConfig>(&name, table, &lines, &mut diags),
                "monitor" => good_keys::<MonitorConfig>(&name, table, &lines, &mut diags),
                "schedule" => good_keys::<ScheduleConfig>(&name, table, &lines, &mut diags),
                "update" => good_keys::<UpdateConfig>(&name, table, &lines, &mut diags),
                "registry" => good_keys::<RegistryConfig>(&name, table, &lines, &mut diags),
                "state" => good_keys::<StateConfig>(&name, table, &lines, &mut diags),
                "log" => good_keys::<LogConfig>(&name, table, &lines, &mut diags),
                "service" => good_keys::<ServiceConfig>(&name, table, &lines, &mut diags),
                "metrics" => good_keys::<MetricsConfig>(&name, table, &lines, &mut diags),
                _ => unreachable!("checked against SECTIONS"),
            };
            clean_root.insert(
                section.clone(),
                Spanned::new(value.span(), DeValue::Table(good)),
            );
        }
        let policy: Policy = match deserialize_table(clean_root.clone(), 0..text.len()) {
            Ok(p) => p,
            Err(e) => {
                // Every key deserialized alone; a failure here is a bug in the
                // per-key pass, but still report it rather than panic.
                diags.push(lines.diagnostic(e.span(), String::new(), e.message().to_string()));
                return Err(diags);
            }
        };
        for (key, message) in policy.semantic_errors() {
            let span = span_of_key(&root, &key);
            diags.push(lines.diagnostic(span, key, message));
        }
        if diags.is_empty() {
            Ok(policy)
        } else {
            diags.sort_by_key(|d| (d.line.unwrap_or(usize::MAX), d.column.unwrap_or(0)));
            Err(diags)
        }
    }

    /// Makes relative directories absolute against `base` (the policy file's
    /// directory), so the daemon does not depend on its working directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        for dir in [
            &mut self.data.dir,
            &mut self.registry.dir,
            &mut self.state.dir,
        ] {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }

    /// Impossible values, as (dotted key, message) pairs.
    fn semantic_errors(&self) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
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
        let t = &self.training;
        check_rate(&mut err, "training.learning_rate", t.learning_rate);
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
        if let Err(e) = crate::daemon::schedule::parse_cron(&self.schedule.cron) {
            err("schedule.cron", e);
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
        let u = &self.update;
        if u.candidates.is_empty() {
            err(
                "update.candidates",
                "must name at least one strategy".into(),
            );
        }
        check_rate(
            &mut err,
            "update.fine_tune.learning_rate",
            u.fine_tune.learning_rate,
        );
        for &lr in &u.fine_tune.lr_grid {
            check_rate(&mut err, "update.fine_tune.lr_grid", lr);
        }
        if u.fine_tune.epochs == 0 {
            err("update.fine_tune.epochs", "must be at least 1".into());
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
            check_rate(&mut err, "update.graft.learning_rate", lr);
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
        if self.registry.dir.as_os_str().is_empty() {
            err("registry.dir", "must not be empty".into());
        }
        if self.state.dir.as_os_str().is_empty() {
            err("state.dir", "must not be empty".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            err("log.filter", format!("invalid filter: {e}"));
        }
        if self.service.stop_timeout_seconds > 3600 {
            err(
                "service.stop_timeout_seconds",
                format!(
                    "is {}; expected at most 3600 (and below the unit's TimeoutStopSec)",
                    self.service.stop_timeout_seconds
                ),
            );
        }
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
        errs
    }

    /// The feature column names this policy selects from a file's columns.
    pub fn select_features(&self, columns: &[String]) -> Vec<String> {
        match &self.data.features {
            FeatureSpec::List(list) => list.clone(),
            FeatureSpec::Pattern(p) => columns
                .iter()
                .filter(|c| {
                    glob_match(p, c)
                        && **c != self.data.label
                        && Some(*c) != self.data.timestamp.as_ref()
                        && Some(*c) != self.data.weight.as_ref()
                        && Some(*c) != self.data.row_id.as_ref()
                        && Some(*c) != self.data.prediction.as_ref()
                        && !self
                            .data
                            .probability
                            .as_ref()
                            .is_some_and(|p| p.columns().contains(c))
                        && !self.data.exclude.contains(c)
                })
                .cloned()
                .collect(),
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

const SECTIONS: &[&str] = &[
    "data", "model", "training", "monitor", "schedule", "update", "registry", "state", "log",
    "service", "metrics",
];

/// Deserializes each key of `table` alone into section type `T`, records the
/// keys that fail, and returns the table of the keys that pass.
fn good_keys<'i, T: DeserializeOwned>(
    section: &str,
    table: &DeTable<'i>,
    lines: &LineIndex,
    diags: &mut Vec<Diagnostic>,
) -> DeTable<'i> {
    let mut good = DeTable::default();
    for (key, value) in table.iter() {
        let mut single = DeTable::default();
        single.insert(key.clone(), value.clone());
        let whole = key.span().start..value.span().end;
        match deserialize_table::<T>(single, whole.clone()) {
            Ok(_) => {
                good.insert(key.clone(), value.clone());
            }
            Err(e) => {
                let span = e
                    .span()
                    .filter(|s| s.start >= whole.start && s.end <= whole.end)
                    .unwrap_or(key.span());
                let path = format!("{section}.{}", key.get_ref());
                let message = friendlier(e.message());
                diags.push(lines.diagnostic(Some(span), path, message));
            }
        }
    }
    good
}

fn friendlier(message: &str) -> String {
    // serde says "unknown field `x`, expected one of ..."; keep it but drop
    // the repeated key name since the diagnostic already names it.
    message.trim().to_string()
}

fn deserialize_table<T: DeserializeOwned>(
    table: DeTable<'_>,
    span: Range<usize>,
) -> Result<T, toml::de::Error> {
    let spanned = Spanned::new(span, table);
    T::deserialize(toml::de::Deserializer::from(spanned))
}

/// Span of the value at a dotted key (`a.b.c`), or of the deepest table on
/// the way when the key itself is absent (a default was used).
fn span_of_key(root: &DeTable<'_>, dotted: &str) -> Option<Range<usize>> {
    let mut table = root;
    let mut best = None;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        // `name[3]` steps into the fourth element of an array of tables.
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let (key, mut value) = table.iter().find(|(k, _)| k.get_ref() == name)?;
        if let (Some(ix), DeValue::Array(items)) = (index, value.get_ref()) {
            match items.get(ix) {
                Some(item) => value = item,
                None => return Some(key.span()),
            }
        }
        best = Some(if i + 1 == parts.len() {
            value.span()
        } else {
            key.span()
        });
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return best,
        }
    }
    best
}

struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let end = offset.min(self.text.len());
        let col = self
            .text
            .get(start..end)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line, col + 1)
    }

    fn diagnostic(&self, span: Option<Range<usize>>, key: String, message: String) -> Diagnostic {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = self.position(s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Diagnostic {
            line,
            column,
            key,
            message,
        }
    }
}

/// Shell-style glob with `*` (any run) and `?` (any one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The documented example policy, also the default of `driftd demo`.
pub const EXAMPLE_POLICY: &str = include_str!("../config/policy.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_policy_is_valid() {
        let p = Policy::parse(EXAMPLE_POLICY).expect("example policy must be valid");
        assert_eq!(p.model.hidden, vec![20, 10]);
        assert_eq!(p.training.epochs, 150);
    }

    #[test]
    fn minimal_policy_uses_defaults() {
        let p = Policy::parse("[data]\nfeatures = [\"a\", \"b\"]\n").unwrap();
        assert_eq!(p.training.learning_rate, 0.01);
        assert_eq!(p.monitor.window, 500);
    }

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
    fn reports_every_error_with_its_line() {
        let text = "\
[data]
features = [\"x\", \"label\"]
colour = \"blue\"
[training]
learning_rate = -0.5
epochs = \"many\"
[model]
hidden = [20, 0]
";
        let diags = Policy::parse(text).unwrap_err();
        let lines: Vec<_> = diags.iter().map(|d| (d.line, d.key.as_str())).collect();
        assert!(lines.contains(&(Some(2), "data.features")), "{diags:?}");
        assert!(lines.contains(&(Some(3), "data.colour")), "{diags:?}");
        assert!(
            lines.contains(&(Some(5), "training.learning_rate")),
            "{diags:?}"
        );
        assert!(lines.contains(&(Some(6), "training.epochs")), "{diags:?}");
        assert!(lines.contains(&(Some(8), "model.hidden")), "{diags:?}");
        assert_eq!(diags.len(), 5, "{diags:?}");
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
    fn unknown_section_and_syntax_errors_are_reported() {
        let diags = Policy::parse("[nope]\na = 1\n[data]\nfeatures = [\"a\"\n").unwrap_err();
        assert!(diags.iter().any(|d| d.key == "nope"), "{diags:?}");
        assert!(diags.iter().any(|d| d.line == Some(4)), "{diags:?}");
    }

    #[test]
    fn unknown_strategy_is_named() {
        let diags =
            Policy::parse("[data]\nfeatures = [\"a\"]\n[update]\ncandidates = [\"magic\"]\n")
                .unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, Some(4));
        assert!(diags[0].message.contains("magic"), "{diags:?}");
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

    #[test]
    fn feature_pattern_selects_columns() {
        let p = Policy::parse("[data]\nfeatures = \"f*\"\nexclude = [\"f_id\"]\n").unwrap();
        let cols: Vec<String> = ["f0", "f1", "f_id", "label", "g"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(p.select_features(&cols), vec!["f0", "f1"]);
    }

    #[test]
    fn glob() {
        assert!(glob_match("f*", "f12"));
        assert!(glob_match("f?", "f1"));
        assert!(!glob_match("f?", "f12"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acd"));
    }
}
