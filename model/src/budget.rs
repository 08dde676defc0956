//! [`Budget`]: how long campaigns run. `cargo test` runs the bounded CI budget; setting
//! `KVSTORE_CAMPAIGN=deep` runs the long one.

/// The environment variable that selects the deep budget.
pub const CAMPAIGN_ENV: &str = "KVSTORE_CAMPAIGN";

/// Which budget campaigns run under.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Budget {
    /// The default: bounded so the model tests stay within a few minutes on 2 cores.
    Ci,
    /// `KVSTORE_CAMPAIGN=deep`: long runs.
    Deep,
}

impl Budget {
    /// The budget the environment selects.
    pub fn from_env() -> Budget {
        match std::env::var(CAMPAIGN_ENV).as_deref() {
            Ok("deep") => Budget::Deep,
            _ => Budget::Ci,
        }
    }

    /// `ci` under the CI budget, `deep` under the deep one.
    pub fn pick<T>(self, ci: T, deep: T) -> T {
        match self {
            Budget::Ci => ci,
            Budget::Deep => deep,
        }
    }
}
