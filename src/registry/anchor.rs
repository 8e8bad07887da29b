//! The anchor of the online challenger's versions: the first ancestor of
//! a version that the challenger did not make. Retention keeps it (it is
//! the follower's rollback target) and a restarted daemon follows from it.

use super::{Registry, RegistryError};

/// The strategy name of a version the online challenger produced
/// (`meta.json`'s `strategy`).
pub const ONLINE_STRATEGY: &str = "online";

/// Walking up the parents of a version (its `strategy` and `parent`) past
/// versions the online challenger made, the first that it did not (`None`
/// if the version itself is not an online version, or an ancestor cannot
/// be read). `parent_of` reads a version's (strategy, parent).
pub fn anchor_version(
    strategy: &str,
    parent: Option<u64>,
    mut parent_of: impl FnMut(u64) -> Option<(String, Option<u64>)>,
) -> Option<u64> {
    if strategy != ONLINE_STRATEGY {
        return None;
    }
    let mut next = parent;
    // Bounded: each step goes to an older version.
    while let Some(v) = next {
        let (strategy, parent) = parent_of(v)?;
        if strategy != ONLINE_STRATEGY {
            return Some(v);
        }
        if parent.is_some_and(|p| p >= v) {
            return None;
        }
        next = parent;
    }
    None
}

impl Registry {
    /// The anchor of `version` (see [`anchor_version`]); `None` for a
    /// version the online challenger did not make.
    pub fn anchor_of(&self, version: u64) -> Result<Option<u64>, RegistryError> {
        let meta = self.read_meta(version)?;
        // Recorded by the version itself: one read, however long the run of
        // online versions (retention asks at every promotion).
        if meta.strategy == ONLINE_STRATEGY && meta.anchor.is_some() {
            return Ok(meta.anchor);
        }
        Ok(anchor_version(&meta.strategy, meta.parent, |v| {
            self.read_meta(v).ok().map(|m| (m.strategy, m.parent))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::meta;
    use super::*;
    use crate::config::Init;
    use crate::model::{Classifier, Mlp};

    /// Retention keeps the anchor of a live online version, however many
    /// online versions followed it.
    #[test]
    fn retention_keeps_the_anchor_of_the_online_versions() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        for v in 1..=8 {
            let mut m = meta(v);
            if v >= 3 {
                m.strategy = ONLINE_STRATEGY.into();
                m.parent = Some(v - 1);
                // The newest records its anchor; the others are found by
                // walking up (versions written before the field).
                m.anchor = (v == 8).then_some(2);
            } else if v == 2 {
                m.strategy = "refit_new".into();
                m.parent = Some(1);
            }
            let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, v));
            reg.write_version(m, &model).unwrap();
            reg.set_live(v, "model_promoted", "test").unwrap();
        }
        assert_eq!(reg.anchor_of(8).unwrap(), Some(2));
        assert_eq!(reg.anchor_of(7).unwrap(), Some(2));
        assert_eq!(reg.anchor_of(2).unwrap(), None);
        assert_eq!(reg.apply_retention(2).unwrap(), vec![1, 3, 4, 5, 6]);
        assert_eq!(reg.versions().unwrap(), vec![2, 7, 8]);
    }

    #[test]
    fn the_anchor_is_the_first_ancestor_the_follower_did_not_make() {
        let chain = [
            (1, "initial", None),
            (2, "refit_new", Some(1)),
            (3, "online", Some(2)),
            (4, "online", Some(3)),
        ];
        let lookup = |v: u64| {
            chain
                .iter()
                .find(|c| c.0 == v)
                .map(|c| (c.1.to_string(), c.2))
        };
        assert_eq!(anchor_version("online", Some(4), lookup), Some(2));
        assert_eq!(anchor_version("refit_new", Some(4), lookup), None);
        // A missing ancestor: no anchor (the learner challenges instead).
        assert_eq!(anchor_version("online", Some(8), lookup), None);
    }
}
