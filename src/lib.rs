//! driftd keeps a deployed neural-network classifier accurate as its data
//! drifts: it tails a directory of labelled Parquet files, scores them with
//! the live model, raises drift alerts, and runs a tournament of update
//! strategies whose winner becomes the next versioned checkpoint.
//!
//! Data flows one way; each stage is a module (see ARCHITECTURE.md):
//! [`ingest`] → [`monitor`] → [`trigger`] → [`update`] →
//! [`registry`] → live model ([`model`]) → [`monitor`]. [`daemon`] only
//! wires the stages together; the offline tools ([`backtest`], [`report`],
//! [`synth`], [`demo`], [`compare`], [`tune`]) call the same stage functions.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod cli;
pub mod compare;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod detect;
pub mod fsutil;
pub mod harness;
pub mod ingest;
pub mod input_drift;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod plot;
pub mod progress;
pub mod registry;
pub mod report;
pub mod sd_notify;
pub mod status;
pub mod synth;
pub mod trigger;
pub mod tune;
pub mod update;
pub mod worker;
