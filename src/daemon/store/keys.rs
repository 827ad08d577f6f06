//! (rule, key) pairs looked up by `&str`: the store marks an obligation
//! changed on every put and remove (nearly every event of a deadline
//! rule), and a set of `(String, String)` made two `String`s per call just
//! to ask whether the pair was already there.

use foldhash::{HashMap, HashSet};

#[derive(Debug, Default)]
pub(super) struct KeySet {
    by_rule: HashMap<String, HashSet<String>>,
    len: usize,
}

impl KeySet {
    /// Adds the pair; whether it was new.
    pub fn insert(&mut self, rule: &str, key: &str) -> bool {
        let keys = match self.by_rule.get_mut(rule) {
            Some(k) => k,
            None => self.by_rule.entry(rule.to_string()).or_default(),
        };
        let new = !keys.contains(key) && keys.insert(key.to_string());
        self.len += usize::from(new);
        new
    }

    pub fn remove(&mut self, rule: &str, key: &str) -> bool {
        let gone = self
            .by_rule
            .get_mut(rule)
            .is_some_and(|keys| keys.remove(key));
        self.len -= usize::from(gone);
        gone
    }

    pub fn contains(&self, rule: &str, key: &str) -> bool {
        self.by_rule
            .get(rule)
            .is_some_and(|keys| keys.contains(key))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        // The rules' sets keep their room for the next input.
        for keys in self.by_rule.values_mut() {
            keys.clear();
        }
        self.len = 0;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_rule
            .iter()
            .flat_map(|(rule, keys)| keys.iter().map(move |k| (rule.as_str(), k.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_counted_once_and_found_by_str() {
        let mut s = KeySet::default();
        assert!(s.insert("r", "a"));
        assert!(!s.insert("r", "a"));
        assert!(s.insert("r", "b"));
        assert!(s.insert("q", "a"));
        assert_eq!(s.len(), 3);
        assert!(s.contains("q", "a") && !s.contains("q", "b"));
        assert!(s.remove("r", "a") && !s.remove("r", "a"));
        let mut all: Vec<_> = s.iter().collect();
        all.sort();
        assert_eq!(all, [("q", "a"), ("r", "b")]);
        s.clear();
        assert!(s.is_empty() && s.iter().next().is_none() && !s.contains("r", "b"));
    }
}
