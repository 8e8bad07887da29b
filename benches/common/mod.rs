//! What more than one bench needs.

use std::path::Path;

use driftd::config::Policy;
use driftd::model::{Architecture, Dataset, Mlp, Scaler};
use driftd::synth;

/// The ingest benchmarks' fixture: `all` in `files` Parquet files
/// (`part-000.parquet`, ...) in `data_dir`, and at `model_path` a model of
/// `policy`'s shape with a scaler fitted to the first rows. The weights are
/// untrained: a trained model does the same arithmetic, and the fitted
/// scaler makes both sides standardize.
pub fn write_ingest_fixture(
    all: &Dataset,
    files: usize,
    data_dir: &Path,
    model_path: &Path,
    policy: &Policy,
) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let rows = all.len();
    let per_file = rows.div_ceil(files);
    for f in 0..files {
        let (start, end) = (f * per_file, ((f + 1) * per_file).min(rows));
        synth::write_parquet(
            &data_dir.join(format!("part-{f:03}.parquet")),
            &all.slice(start, end),
            None,
        )
        .expect("write");
    }
    let mut model = Mlp::new(
        Architecture::from_policy(policy, all.width),
        policy.model.init,
        3,
    );
    model.scaler = Scaler::fit(&all.slice(0, 10_000.min(rows)));
    std::fs::write(model_path, model.to_safetensors().expect("save")).expect("write model");
}
