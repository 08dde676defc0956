//! The 3-gram key index (`Options::key_index`): an inverted index from every 3-byte gram to the
//! live keys holding it, kept in a second engine database in `<db>/index/`
//! (`spec/FORMAT.md` § 5.4), so that [`crate::Db::search_contains`] and
//! [`crate::Db::search_fuzzy`] read a few postings instead of every key.
//!
//! - `gram`: the grams of a key and the q-gram lemma's bound; `distance`: bounded Levenshtein.
//! - `layout`: the index database's keys (postings, long-key markers, the revision record).
//! - `maintain`: [`KeyIndex`], the commit observer that keeps the index, and what it persists.
//! - `reconcile`: opening the index against the main database (catch up or rebuild).
//! - `query`: the candidates of a search from the postings and the unpersisted changes.
//!
//! Invariants (the argument is `spec/SEMANTICS.md` § "Key index"):
//! - The index database's revision record `I` is never above a revision the main database made
//!   durable: a commit's changes are persisted only after [`crate::CommitObserver::durable`]
//!   covers it, and reconciling starts with a sync of the main database. So after any crash
//!   `I <= L`, the recovered main revision, and every revision up to `I` is the one the index saw.
//! - Its postings say exactly which keys are live at main revision `I`, except that keys written
//!   in `(I, L']` for some durable `L' >= I` may already say what they are at `L'` (an index
//!   batch was cut in pieces); catching up from `I` rewrites every such key.
//! - In memory, the changes of every revision above `I` told to the observer are kept in order
//!   (`pending`): the postings plus those changes are the live keys at the newest revision told.

mod distance;
mod gram;
mod layout;
mod maintain;
mod query;
mod reconcile;

pub(crate) use gram::GRAM_LEN;
pub(crate) use maintain::KeyIndex;
pub(crate) use query::{Candidates, contains_matches, fuzzy_matches};
pub(crate) use reconcile::open_index;
