//! Remembered token strings, so that naming a token by its string again
//! costs one request instead of a walk through the whole list.

use std::collections::HashMap;

use ulid::Ulid;

/// Entries kept before the cache starts over. About 100 bytes each, so the
/// cache stays under a few megabytes.
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Default)]
pub struct LookupCache {
    ids: HashMap<String, Ulid>,
}

impl LookupCache {
    pub fn get(&self, token: &str) -> Option<Ulid> {
        self.ids.get(token).copied()
    }

    pub fn remember(&mut self, token: &str, id: Ulid) {
        if self.ids.len() >= MAX_ENTRIES && !self.ids.contains_key(token) {
            self.ids.clear();
        }
        self.ids.insert(token.to_owned(), id);
    }

    /// Drops an entry whose ID MAS no longer knows.
    pub fn forget(&mut self, token: &str) {
        self.ids.remove(token);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let mut cache = LookupCache::default();
        let id = Ulid::from_parts(1, 2);
        cache.remember("abc", id);
        assert_eq!(cache.get("abc"), Some(id));
        assert_eq!(cache.get("ABC"), None);
        cache.forget("abc");
        assert_eq!(cache.get("abc"), None);
    }

    #[test]
    fn size_is_bounded() {
        let mut cache = LookupCache::default();
        for index in 0..=MAX_ENTRIES {
            cache.remember(&index.to_string(), Ulid::from_parts(index as u64, 0));
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
