//! What a version serves: a [`Classifier`], one MLP or a weighted ensemble.

use super::{Architecture, Dataset, EnsembleError, Mlp, ModelError};

/// Ensemble members must agree on inputs and classes; weights must be
/// non-negative with a positive sum.
pub fn check_ensemble(archs: &[&Architecture], weights: &[f64]) -> Result<(), EnsembleError> {
    let first = archs.first().ok_or(EnsembleError::NoMembers)?;
    if let Some(a) = archs
        .iter()
        .find(|a| a.inputs != first.inputs || a.classes != first.classes)
    {
        return Err(EnsembleError::MembersDisagree {
            inputs: a.inputs,
            classes: a.classes,
            first_inputs: first.inputs,
            first_classes: first.classes,
        });
    }
    if weights.len() != archs.len()
        || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
        || weights.iter().sum::<f64>() <= 0.0
    {
        return Err(EnsembleError::BadWeights {
            weights: weights.to_vec(),
            members: archs.len(),
        });
    }
    Ok(())
}

/// What a version serves: one MLP, or an ensemble whose members'
/// probabilities are averaged with weights. Members keep their own input
/// standardization.
#[derive(Debug, Clone)]
pub enum Classifier {
    Single(Mlp),
    Ensemble {
        members: Vec<Mlp>,
        weights: Vec<f64>,
    },
}

impl Classifier {
    /// An ensemble of `members` with `weights` (normalised here), checked
    /// for matching inputs and classes.
    pub fn ensemble(members: Vec<Mlp>, weights: Vec<f64>) -> Result<Classifier, ModelError> {
        let archs: Vec<&Architecture> = members.iter().map(|m| &m.arch).collect();
        check_ensemble(&archs, &weights)?;
        let total: f64 = weights.iter().sum();
        Ok(Classifier::Ensemble {
            members,
            weights: weights.iter().map(|w| w / total).collect(),
        })
    }

    pub fn members(&self) -> &[Mlp] {
        match self {
            Classifier::Single(m) => std::slice::from_ref(m),
            Classifier::Ensemble { members, .. } => members,
        }
    }

    pub fn weights(&self) -> Vec<f64> {
        match self {
            Classifier::Single(_) => vec![1.0],
            Classifier::Ensemble { weights, .. } => weights.clone(),
        }
    }

    /// The newest member: what fine-tuning and grafting start from.
    pub fn newest(&self) -> &Mlp {
        self.members().last().expect("a classifier has a member")
    }

    pub fn inputs(&self) -> usize {
        self.newest().arch.inputs
    }

    pub fn classes(&self) -> usize {
        self.newest().arch.classes
    }

    /// Weighted average of the members' class probabilities.
    pub fn predict_proba(&self, data: &Dataset) -> Result<Vec<f32>, ModelError> {
        match self {
            Classifier::Single(m) => m.predict_proba(data),
            Classifier::Ensemble { members, weights } => {
                let mut acc: Vec<f64> = Vec::new();
                for (m, &w) in members.iter().zip(weights) {
                    let p = m.predict_proba(data)?;
                    if acc.is_empty() {
                        acc = vec![0.0; p.len()];
                    }
                    for (a, v) in acc.iter_mut().zip(&p) {
                        *a += w * *v as f64;
                    }
                }
                Ok(acc.into_iter().map(|v| v as f32).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Classifier;
    use crate::config::Init;
    use crate::model::test_support::{arch, toy};
    use crate::model::Mlp;

    #[test]
    fn ensemble_averages_member_probabilities() {
        let data = toy(20, 10);
        let a = Mlp::new(arch(2), Init::HeNormal, 1);
        let b = Mlp::new(arch(2), Init::HeNormal, 2);
        let (pa, pb) = (
            a.predict_proba(&data).unwrap(),
            b.predict_proba(&data).unwrap(),
        );
        let e = Classifier::ensemble(vec![a, b], vec![1.0, 3.0]).unwrap();
        let pe = e.predict_proba(&data).unwrap();
        for i in 0..pe.len() {
            let want = 0.25 * pa[i] as f64 + 0.75 * pb[i] as f64;
            assert!((pe[i] as f64 - want).abs() < 1e-6);
        }
        assert!(Classifier::ensemble(vec![], vec![]).is_err());
    }
}
