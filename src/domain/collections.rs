//! Small sorted collections for the per-person sets and maps: [`VecSet`] and [`VecMap`].
//!
//! Every [`DesiredUser`](crate::sync::mapping::DesiredUser) and
//! [`SnapshotUser`](crate::sync::snapshot::SnapshotUser) holds a few roles, a few custom fields and a
//! few groups, and a run holds both for every employee. As `BTreeSet`/`BTreeMap` these cost far
//! more than their contents, because a B-tree leaf has room for 11 entries however few it holds.
//! Measured with a counting allocator on the person `benches/plan.rs` builds (two custom fields,
//! two groups, one role): 1,049 heap bytes, of which 671 for the categories map and 305 for the
//! group set. With these types instead, the benchmark (100k employees against a 100k snapshot)
//! went from 326 MB to 185 MB peak RSS, and planning from 66 to 30 ms; interning the refs they
//! hold (`domain::intern`) took it to 154 MB.
//!
//! Both keep their items in one exactly-sized `Vec`, sorted and without duplicates, so iteration
//! order, equality and serde output are those of the B-tree collections they replace: a set is a
//! JSON array, a map a JSON object, both in ascending order (the snapshot's JSON columns and
//! `plan --json` depend on that). Lookups are binary searches; an insert shifts the tail, which is
//! cheap for the handful of items a person has and would be the wrong choice for large collections.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sorted set in one `Vec`; see the [module docs](self).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VecSet<T>(Vec<T>);

impl<T> VecSet<T> {
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T: Ord> VecSet<T> {
    pub fn contains<Q: Ord + ?Sized>(&self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.0.binary_search_by(|x| x.borrow().cmp(item)).is_ok()
    }

    /// Adds `item`; false when it was already there (the stored one is kept).
    pub fn insert(&mut self, item: T) -> bool {
        match self.0.binary_search(&item) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, item);
                true
            }
        }
    }

    /// Removes `item`; false when it was not there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.0.binary_search_by(|x| x.borrow().cmp(item)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// The items of `self` that are not in `other`, in ascending order.
    pub fn difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> + 'a {
        self.0.iter().filter(move |item| !other.contains(*item))
    }
}

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for VecSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

impl<T: Ord> FromIterator<T> for VecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut items: Vec<T> = items.into_iter().collect();
        // Stable, so of equal items the first is kept, as `BTreeSet` does.
        items.sort();
        items.dedup();
        items.shrink_to_fit();
        Self(items)
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for VecSet<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<T: Ord> Extend<T> for VecSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.insert(item);
        }
    }
}

impl<'a, T> IntoIterator for &'a VecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T> IntoIterator for VecSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: Serialize> Serialize for VecSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.0)
    }
}

impl<'de, T: Deserialize<'de> + Ord> Deserialize<'de> for VecSet<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(|items: Vec<T>| items.into_iter().collect())
    }
}

/// A map sorted by key in one `Vec`; see the [module docs](self).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> VecMap<K, V> {
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// In ascending key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &V)> {
        self.0.iter().map(|(key, value)| (key, value))
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &self.0[at].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| self.0.remove(at).1)
    }
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut entries: Vec<(K, V)> = entries.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // Of equal keys the last value wins, as with `BTreeMap`: `dedup_by` hands us the later
        // entry first, so move its value into the one that stays.
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        entries.shrink_to_fit();
        Self(entries)
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<K: Ord, V> Extend<(K, V)> for VecMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(key, value)| (key, value))
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for VecMap<K, V> {
    /// Through a `BTreeMap`, so that what is accepted, and which of two equal keys wins, is
    /// exactly as before. The B-tree is dropped at once; only the `Vec` stays.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(deserializer)
            .map(|entries: BTreeMap<K, V>| entries.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn a_set_orders_dedups_and_serialises_like_a_btreeset() {
        let raw = ["b", "a", "c", "a"];
        let ours: VecSet<&str> = raw.into_iter().collect();
        let theirs: BTreeSet<&str> = raw.into_iter().collect();
        assert_eq!(
            ours.iter().collect::<Vec<_>>(),
            theirs.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        let back: VecSet<String> = serde_json::from_str(r#"["c","a","c","b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), r#"["a","b","c"]"#);
    }

    #[test]
    fn a_set_inserts_removes_and_differs() {
        let mut set = VecSet::from([3, 1]);
        assert!(set.insert(2));
        assert!(!set.insert(2));
        assert!(set.contains(&2));
        assert!(set.remove(&1));
        assert!(!set.remove(&1));
        assert_eq!(set, VecSet::from([2, 3]));
        let other = VecSet::from([3, 4]);
        assert_eq!(set.difference(&other).collect::<Vec<_>>(), [&2]);
        assert_eq!(other.difference(&set).collect::<Vec<_>>(), [&4]);
        set.extend([0, 3]);
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [0, 2, 3]);
    }

    #[test]
    fn a_map_orders_and_serialises_like_a_btreemap_and_the_last_value_wins() {
        let raw = [("b", 1), ("a", 2), ("b", 3)];
        let ours: VecMap<&str, i32> = raw.into_iter().collect();
        let theirs: BTreeMap<&str, i32> = raw.into_iter().collect();
        assert_eq!(
            ours.iter().collect::<Vec<_>>(),
            theirs.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        let back: VecMap<String, i32> = serde_json::from_str(r#"{"z":1,"y":2,"z":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), r#"{"y":2,"z":3}"#);
    }

    #[test]
    fn a_map_inserts_gets_and_removes() {
        let mut map = VecMap::new();
        assert_eq!(map.insert("b".to_owned(), 1), None);
        assert_eq!(map.insert("a".to_owned(), 2), None);
        assert_eq!(map.insert("b".to_owned(), 3), Some(1));
        assert_eq!(map.get("b"), Some(&3));
        assert!(map.contains_key("a"));
        assert_eq!(map.remove("a"), Some(2));
        assert_eq!(map.get("a"), None);
        assert_eq!(map.len(), 1);
        map.clear();
        assert!(map.is_empty());
    }
}
