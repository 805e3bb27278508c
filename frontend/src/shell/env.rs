//! Ordered variable lists, as the lexer reads them and as a stage's
//! environment accumulates them.

use std::collections::HashMap;

/// Something the lexer can look variables up in.
pub trait Env {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<&str>;
}

/// An ordered `KEY=value` list where setting an existing key replaces it in
/// place (BuildKit's `llb.EnvList` / image `Env` semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a list from `KEY=value` strings (a missing `=` means an empty
    /// value).
    pub fn from_env_strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Self {
        let mut l = EnvList::new();
        for item in items {
            let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
            l.set(k, v);
        }
        l
    }

    /// Sets `key` (replacing in place, or appending).
    pub fn set(&mut self, key: &str, value: &str) {
        match self.index.get(key) {
            Some(&i) => self.entries[i].1 = value.to_string(),
            None => {
                self.index.insert(key.to_string(), self.entries.len());
                self.entries.push((key.to_string(), value.to_string()));
            }
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        if self.index.remove(key).is_some() {
            self.entries.retain(|(k, _)| k != key);
            self.index = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
        }
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// `KEY=value` strings in order.
    pub fn to_env_strings(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Env for EnvList {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An environment with nothing set.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _key: &str) -> Option<&str> {
        None
    }
}
