//! Which parts of a JSON document a flow reads: the projection the parser keeps, built
//! from the field paths the mapping reads.

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
}

static WHOLE: Projection = Projection {
    whole: true,
    fields: Vec::new(),
    key_bits: 0,
    items: None,
};

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
        root
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

    /// [`Projection::kept`] for the scanner, trying the field after the one kept last
    /// (`*next`) first: a system writes its keys in one order, so most kept keys are found
    /// by one comparison. Also the kept field's position, [`Projection::WHOLE_FIELD`] under
    /// a whole projection.
    #[inline]
    pub(crate) fn kept_next(
        &self,
        key: &str,
        next: &mut usize,
    ) -> Option<(Option<&'static str>, &Projection, usize)> {
        if self.whole {
            return Some((None, &WHOLE, Self::WHOLE_FIELD));
        }
        if let Some((name, child)) = self.fields.get(*next) {
            if *name == key {
                let at = *next;
                *next += 1;
                return Some((Some(*name), child, at));
            }
        }
        if self.key_bits & key_bit(key) == 0 {
            return None;
        }
        let at = self.fields.iter().position(|(n, _)| *n == key)?;
        *next = at + 1;
        let (name, child) = &self.fields[at];
        Some((Some(*name), child, at))
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
