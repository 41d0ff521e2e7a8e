//! Which parts of a JSON document a flow reads: the projection the parser keeps, built
//! from the field paths the mapping reads.

use crate::intern::same_text;
use std::sync::atomic::{AtomicU32, Ordering};

/// Which parts of a document to keep.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    pub(crate) whole: bool,
    /// Kept fields by interned name.
    pub(crate) fields: Vec<(&'static str, Projection)>,
    /// One bit per kept field's [`key_bit`]: most keys a document carries and the
    /// mapping never reads are passed over without a comparison.
    key_bits: u64,
    items: Option<Box<Projection>>,
    /// The kept field that followed the start (at 0) and each kept field (at its position
    /// plus one) in the last document that ordered them differently: learned, since
    /// documents from one system keep their keys in one order, which the reads (sorted
    /// by name) do not know.
    follows: Vec<Hint>,
}

/// A field position remembered across documents; only ever a guess to try first.
#[derive(Debug, Default)]
struct Hint(AtomicU32);

impl Clone for Hint {
    fn clone(&self) -> Hint {
        Hint(AtomicU32::new(self.0.load(Ordering::Relaxed)))
    }
}

static WHOLE: Projection = Projection {
    whole: true,
    fields: Vec::new(),
    key_bits: 0,
    items: None,
    follows: Vec::new(),
};

/// Most nodes [`Projection::from_reads`] copies to widen `[*]` reads; past it the whole
/// document is kept.
const SETTLE_BUDGET: usize = 4096;

/// A cheap signature of a key: its length and first and last bytes.
#[inline]
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let (first, last) = match bytes {
        [] => (0, 0),
        [first, .., last] => (*first, *last),
        [only] => (*only, *only),
    };
    let mixed = (bytes.len() as u32)
        .wrapping_mul(31)
        .wrapping_add(u32::from(first).wrapping_mul(7))
        .wrapping_add(u32::from(last));
    1u64 << (mixed % 64)
}

impl Projection {
    /// Keeps the whole document.
    pub fn whole() -> Projection {
        Projection {
            whole: true,
            ..Projection::default()
        }
    }

    /// The projection for a list of read paths (`$.a.b`, `$.items[*].sku`); any path that is
    /// not a simple path keeps the whole document.
    pub fn from_reads(reads: &[String]) -> Projection {
        let mut root = Projection::default();
        for read in reads {
            match omniflow_ir::path::simple_path(read) {
                Some(path) => root.add(&path),
                None => return Projection::whole(),
            }
        }
        let mut budget = SETTLE_BUDGET;
        match root.settle(&mut budget) {
            Some(()) => root,
            None => Projection::whole(),
        }
    }

    /// Widens what `[*]` reads into every field kept beside it: over an object, `[*]`
    /// reads the value of each field, so a field also read by name keeps both. `None`
    /// once the copies would pass `budget` nodes (reads naming one key at many `[*]`
    /// depths double the tree at each).
    fn settle(&mut self, budget: &mut usize) -> Option<()> {
        self.follows = (0..=self.fields.len() as u32)
            .map(|at| Hint(AtomicU32::new(at)))
            .collect();
        if let Some(items) = self.items.as_deref() {
            let copied = items.size();
            for (_, child) in &mut self.fields {
                *budget = budget.checked_sub(copied)?;
                child.merge(items);
            }
        }
        for (_, child) in &mut self.fields {
            child.settle(budget)?;
        }
        match self.items.as_deref_mut() {
            Some(items) => items.settle(budget),
            None => Some(()),
        }
    }

    /// Nodes in this projection.
    fn size(&self) -> usize {
        1 + self.fields.iter().map(|(_, f)| f.size()).sum::<usize>()
            + self.items.as_deref().map_or(0, Projection::size)
    }

    /// Keeps what `other` keeps too.
    fn merge(&mut self, other: &Projection) {
        if self.whole {
            return;
        }
        if other.whole {
            *self = Projection::whole();
            return;
        }
        for (name, theirs) in &other.fields {
            match self.fields.iter_mut().find(|(mine, _)| *mine == *name) {
                Some((_, child)) => child.merge(theirs),
                None => {
                    self.fields.push((*name, theirs.clone()));
                    self.key_bits |= key_bit(name);
                }
            }
        }
        if let Some(theirs) = other.items.as_deref() {
            match self.items.as_deref_mut() {
                Some(items) => items.merge(theirs),
                None => self.items = Some(Box::new(theirs.clone())),
            }
        }
    }

    fn add(&mut self, path: &[omniflow_ir::PathSeg]) {
        use omniflow_ir::PathSeg;
        if self.whole {
            return;
        }
        let Some((first, rest)) = path.split_first() else {
            *self = Projection::whole();
            return;
        };
        let child = match first {
            PathSeg::Field(name) => {
                let idx = match self.fields.iter().position(|(n, _)| n == name) {
                    Some(idx) => idx,
                    None => {
                        self.fields
                            .push((crate::intern::intern(name), Projection::default()));
                        self.key_bits |= key_bit(name);
                        self.fields.len() - 1
                    }
                };
                &mut self.fields[idx].1
            }
            PathSeg::All | PathSeg::Index(_) => self.items.get_or_insert_with(Box::default),
        };
        child.add(rest);
    }

    /// A kept field's interned name (`None` under a whole projection, where every key
    /// is kept as written) and projection (for the serde_json path).
    #[inline]
    pub(crate) fn kept(&self, key: &str) -> Option<(Option<&'static str>, &Projection)> {
        self.kept_next(key, &mut 0)
            .map(|(name, child, _)| (name, child))
    }

    /// [`Projection::kept`] for the scanner, trying first the field that followed the one
    /// kept last (`*last`: 0 at the start of an object, a field's position plus one after
    /// it) in earlier documents: a system writes its keys in one order, so most kept keys
    /// are found by one comparison. Also the kept field's position,
    /// [`Projection::WHOLE_FIELD`] under a whole projection. Where `[*]` is read, every
    /// other key is kept under the elements' projection (`[*]` over an object reads its
    /// values).
    #[inline(always)]
    pub(crate) fn kept_next(
        &self,
        key: &str,
        last: &mut usize,
    ) -> Option<(Option<&'static str>, &Projection, usize)> {
        if self.whole {
            return Some((None, &WHOLE, Self::WHOLE_FIELD));
        }
        let guess = self
            .follows
            .get(*last)
            .map_or(*last, |hint| hint.0.load(Ordering::Relaxed) as usize);
        if let Some((name, child)) = self.fields.get(guess) {
            if same_text(name, key) {
                *last = guess + 1;
                return Some((Some(*name), child, guess));
            }
        }
        self.kept_elsewhere(key, last)
    }

    /// [`Projection::kept_next`] past a wrong guess: the field found by name (learned as
    /// the one to guess next time), else the elements' projection where `[*]` is read.
    #[inline(never)]
    fn kept_elsewhere(
        &self,
        key: &str,
        last: &mut usize,
    ) -> Option<(Option<&'static str>, &Projection, usize)> {
        if self.key_bits & key_bit(key) != 0 {
            if let Some(at) = self.fields.iter().position(|(n, _)| same_text(n, key)) {
                if let Some(hint) = self.follows.get(*last) {
                    hint.0.store(at as u32, Ordering::Relaxed);
                }
                *last = at + 1;
                let (name, child) = &self.fields[at];
                return Some((Some(*name), child, at));
            }
        }
        let items = self.items.as_deref()?;
        Some((None, items, Self::WHOLE_FIELD))
    }

    /// The position [`Projection::kept_next`] gives a field under a whole projection.
    pub(crate) const WHOLE_FIELD: usize = usize::MAX;

    /// The projection of list elements (for the scanner).
    pub(crate) fn items_projection(&self) -> Option<&Projection> {
        self.element()
    }

    pub(crate) fn element(&self) -> Option<&Projection> {
        if self.whole {
            return Some(&WHOLE);
        }
        self.items.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key read at each of thirty `[*]` depths would double the projection at every
    /// level as `[*]` widens into the key: past the budget the whole document is kept.
    #[test]
    fn reads_that_would_multiply_the_projection_keep_the_whole_document() {
        let reads = |depth: usize| -> Vec<String> {
            (0..depth)
                .map(|i| format!("${}.k{}", "[*]".repeat(i), "[*]".repeat(depth - 1 - i)))
                .collect()
        };
        let deep = Projection::from_reads(&reads(30));
        assert!(deep.whole);
        let shallow = Projection::from_reads(&reads(4));
        assert!(!shallow.whole);
        assert!(shallow.size() < 100, "{}", shallow.size());
    }
}
