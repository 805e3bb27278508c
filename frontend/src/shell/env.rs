//! Ordered variable lists, as the lexer reads them and as a stage's
//! environment accumulates them.

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
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| k == key) {
            e.1 = value.to_string();
        } else {
            self.entries.push((key.to_string(), value.to_string()));
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
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
