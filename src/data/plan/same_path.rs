//! Finds two listed objects that would be written to one file: `a//b`, `a/./b` and `a/b`
//! all land on `a/b`. Without this, one would silently replace the other and both be
//! recorded as done.
//!
//! Memory stays small for any listing: a key that spells its path exactly (nearly all
//! keys) is remembered as a 64-bit hash of the path, under a key chosen at random per
//! transfer, so a store cannot make two paths collide on purpose; only keys that do not
//! spell their path are kept whole. Two objects on one path always include one such key,
//! so the clash is found whichever comes first, and both keys are named.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

/// Keys kept whole at most: a listing of more keys that do not spell their path is
/// refused rather than remembered.
pub const MAX_UNUSUAL_KEYS: usize = 100_000;

#[derive(Default)]
pub struct SamePath {
    hasher: RandomState,
    /// Paths of the objects whose key spells them exactly, hashed.
    spelled: HashSet<u64>,
    /// Path to key, for the objects whose key does not spell their path.
    unusual: HashMap<String, String>,
}

/// Why an object cannot be downloaded where its key says.
#[derive(Debug, PartialEq, Eq)]
pub enum Clash {
    /// Another object (this key) is written to the same file.
    With(String),
    TooManyUnusual,
}

impl SamePath {
    /// Records object `key`, which is written to `path`; `spelled` says whether the key's
    /// part below the listed prefix is `path` itself. A clash names the earlier object:
    /// for an object whose key spells its path, that is the key `same_key(path)` gives.
    pub fn add(
        &mut self,
        key: &str,
        path: &str,
        spelled: bool,
        same_key: impl Fn(&str) -> String,
    ) -> Result<(), Clash> {
        let hash = self.hasher.hash_one(path);
        if let Some(earlier) = self.unusual.get(path) {
            return Err(Clash::With(earlier.clone()));
        }
        if spelled {
            return match self.spelled.insert(hash) {
                true => Ok(()),
                // The store listed the same key twice.
                false => Err(Clash::With(key.to_string())),
            };
        }
        if self.spelled.contains(&hash) {
            return Err(Clash::With(same_key(path)));
        }
        if self.unusual.len() >= MAX_UNUSUAL_KEYS {
            return Err(Clash::TooManyUnusual);
        }
        self.unusual.insert(path.to_string(), key.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut SamePath, key: &str) -> Result<(), Clash> {
        let path: Vec<&str> = key
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let path = path.join("/");
        let spelled = path == key;
        s.add(key, &path, spelled, |p| p.to_string())
    }

    #[test]
    fn keys_on_one_path_clash_in_either_order_and_name_each_other() {
        let mut s = SamePath::default();
        assert_eq!(add(&mut s, "a/b"), Ok(()));
        assert_eq!(add(&mut s, "a//b"), Err(Clash::With("a/b".into())));
        let mut s = SamePath::default();
        assert_eq!(add(&mut s, "a/./b"), Ok(()));
        assert_eq!(add(&mut s, "a//b"), Err(Clash::With("a/./b".into())));
        assert_eq!(add(&mut s, "a/b"), Err(Clash::With("a/./b".into())));
        let mut s = SamePath::default();
        for key in ["x", ".x.sidewire-part", "a/b", "a//c", "b/a"] {
            assert_eq!(add(&mut s, key), Ok(()), "{key}");
        }
        assert_eq!(add(&mut s, "x"), Err(Clash::With("x".into())));
    }

    #[test]
    fn unusual_keys_are_remembered_up_to_a_bound() {
        let mut s = SamePath::default();
        for i in 0..MAX_UNUSUAL_KEYS {
            assert_eq!(add(&mut s, &format!("d//{i}")), Ok(()));
        }
        assert_eq!(add(&mut s, "d//last"), Err(Clash::TooManyUnusual));
        assert_eq!(add(&mut s, "d/last"), Ok(()));
    }
}
