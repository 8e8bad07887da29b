//! Helpers shared by the registry's unit tests.

use std::fs;
use std::path::Path;

use chrono::Utc;

use super::{DataSummary, Registry, VersionMeta};
use crate::config::{Activation, Init, OptimizerKind};
use crate::model::{Architecture, Classifier, Mlp, TrainSettings};

pub(super) fn meta(version: u64) -> VersionMeta {
    VersionMeta {
        version,
        parent: None,
        strategy: "initial".into(),
        trigger: "initial".into(),
        created_at: Utc::now(),
        architecture: Architecture {
            inputs: 3,
            hidden: vec![4],
            activation: Activation::Relu,
            classes: 2,
        },
        features: vec!["a".into(), "b".into(), "c".into()],
        label: "y".into(),
        training: Some(TrainSettings {
            optimizer: OptimizerKind::Sgd,
            learning_rate: 0.01,
            momentum: 0.9,
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 1,
            early_stopping: crate::config::EarlyStopping::OFF,
        }),
        threads: 1,
        train_report: None,
        data: DataSummary::default(),
        holdout: None,
        live_holdout: None,
        leaderboard: vec![],
        members: vec![],
        driftd_version: "test".into(),
        input_profile: None,
        import: None,
        seeds: None,
        update_settings: None,
        files: None,
        anchor: None,
    }
}

pub(super) fn write_live(reg: &Registry, version: u64, seed: u64) {
    let m = meta(version);
    let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, seed));
    reg.write_version(m, &model).unwrap();
    reg.set_live(version, "model_promoted", "test").unwrap();
}

pub(super) fn flip_last_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(path, bytes).unwrap();
}
