//! The documented example policy (`config/policy.toml`), compiled in.

/// The documented example policy, also the default of `driftd demo`.
pub const EXAMPLE_POLICY: &str = include_str!("../../config/policy.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;

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
}
