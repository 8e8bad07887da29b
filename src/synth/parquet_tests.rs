//! Unit tests of the Parquet output: files, columns, types, bytes.

use polars::prelude::{DataType, ParquetReader, SerReader};

use super::super::test_support::stream_spec;
use super::super::*;
use super::*;

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(File::open(path).unwrap())
        .finish()
        .unwrap()
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
