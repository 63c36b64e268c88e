//! The in-memory key index (etcd's treeIndex idea): for every key, its generations of
//! revisions. A generation runs from a key's creation to its deletion (tombstone); the last
//! generation is empty while the key is deleted.

use std::collections::HashSet;

use smallvec::{smallvec, SmallVec};

use super::Revision;

/// Most keys have one generation, and most generations few revisions: both inline (a key
/// index with one revision is 56 bytes and no allocation of its own).
pub type Revisions = SmallVec<[Revision; 1]>;
pub type Generations = SmallVec<[Generation; 1]>;

#[derive(Debug, Clone, Default)]
pub struct Generation {
    /// Number of revisions in the generation (puts, and the closing tombstone).
    pub ver: i64,
    pub created: Revision,
    pub revs: Revisions,
}

#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    pub generations: Generations,
}

/// What a key looked like at a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAt {
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

impl KeyIndex {
    /// Records a put at `rev`.
    pub fn put(&mut self, rev: Revision) {
        match self.generations.last_mut() {
            Some(g) => {
                if g.revs.is_empty() {
                    g.created = rev;
                }
                g.revs.push(rev);
                g.ver += 1;
            }
            None => self.generations.push(Generation {
                ver: 1,
                created: rev,
                revs: smallvec![rev],
            }),
        }
    }

    /// Rebuilds from storage: a put at `rev` of a key created at `created` with `version`
    /// (after compaction a generation may no longer hold its creating revision).
    pub fn restore_put(&mut self, rev: Revision, created: Revision, version: i64) {
        let fresh = self.is_deleted();
        self.put(rev);
        if fresh {
            if let Some(g) = self.generations.last_mut() {
                g.created = created;
                g.ver = version;
            }
        }
    }

    /// Records a deletion at `rev`: the tombstone closes the current generation.
    /// Returns false when the key is not live (nothing to delete).
    pub fn tombstone(&mut self, rev: Revision) -> bool {
        if self.is_deleted() {
            return false;
        }
        self.put(rev);
        self.generations.push(Generation::default());
        true
    }

    /// True when the key has no live generation.
    pub fn is_deleted(&self) -> bool {
        self.generations.last().is_none_or(|g| g.revs.is_empty())
    }

    /// The key's state at `at`, if it was live then.
    pub fn get(&self, at: i64) -> Option<KeyAt> {
        let g = self.find_generation(at)?;
        let n = g.revs.iter().rposition(|r| r.main <= at)?;
        Some(KeyAt {
            modified: g.revs[n],
            created: g.created,
            version: g.ver - (g.revs.len() - n - 1) as i64,
        })
    }

    fn find_generation(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let (Some(first), Some(tomb)) = (g.revs.first(), g.revs.last()) else {
                continue;
            };
            if i != last && tomb.main <= at {
                return None;
            }
            if first.main <= at {
                return Some(g);
            }
        }
        None
    }

    /// Compacts to `at`: drops every revision superseded at `at`, keeping the latest one
    /// at or before `at` unless it is a tombstone. Adds the kept revisions to `keep`.
    /// Returns true when the key index is now empty and should be removed.
    pub fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        if self.generations.is_empty() {
            return true;
        }
        let mut gi = 0;
        while gi < self.generations.len() - 1 {
            let g = &self.generations[gi];
            match g.revs.last() {
                Some(tomb) if tomb.main > at => break,
                _ => gi += 1,
            }
        }
        let last_gen = self.generations.len() - 1;
        let g = &mut self.generations[gi];
        if !g.revs.is_empty() {
            if let Some(n) = g.revs.iter().rposition(|r| r.main <= at) {
                keep.insert(g.revs[n]);
                g.revs.drain(..n);
            }
            if g.revs.len() == 1 && gi != last_gen && g.revs[0].main <= at {
                // Only the tombstone is left of a finished generation: drop it too.
                keep.remove(&g.revs[0]);
                gi += 1;
            }
        }
        self.generations.drain(..gi);
        self.generations.len() == 1 && self.generations[0].revs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision { main, sub: 0 }
    }

    #[test]
    fn get_across_generations() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(4));
        assert!(ki.tombstone(r(6)));
        ki.put(r(8));
        assert_eq!(ki.get(1), None);
        assert_eq!(
            ki.get(3).map(|k| (k.modified.main, k.version)),
            Some((2, 1))
        );
        assert_eq!(
            ki.get(5)
                .map(|k| (k.modified.main, k.version, k.created.main)),
            Some((4, 2, 2))
        );
        assert_eq!(ki.get(6), None);
        assert_eq!(ki.get(7), None);
        assert_eq!(
            ki.get(9)
                .map(|k| (k.modified.main, k.version, k.created.main)),
            Some((8, 1, 8))
        );
    }

    #[test]
    fn compact_keeps_latest_and_drops_tombstoned_generations() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(4));
        ki.tombstone(r(6));
        ki.put(r(8));
        let mut keep = HashSet::new();
        assert!(!ki.compact(5, &mut keep));
        assert!(keep.contains(&r(4)));
        assert_eq!(ki.get(5).map(|k| k.modified.main), Some(4));
        let mut keep = HashSet::new();
        assert!(!ki.compact(7, &mut keep));
        assert!(keep.is_empty());
        assert_eq!(ki.generations.len(), 1);
        assert_eq!(ki.get(9).map(|k| k.modified.main), Some(8));
        let mut deleted = KeyIndex::default();
        deleted.put(r(2));
        deleted.tombstone(r(3));
        let mut keep = HashSet::new();
        assert!(deleted.compact(3, &mut keep));
        assert!(keep.is_empty());
    }
}
