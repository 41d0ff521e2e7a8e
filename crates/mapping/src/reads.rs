//! What a map reads of its input, narrowed through `as` variables: `$.items[*] as it ->
//! it.sku` reads `$.items[*].sku`, not every field of every item. The projection built
//! from these reads keeps only those fields, and the fields it keeps carry interned names.

use omniflow_ir::expr::path_text;
use omniflow_ir::{Expr, PathSeg, RecordItem, Root};
use std::collections::{BTreeSet, HashMap};

/// `reads` (the compiler's list for `program`), with every `$…[*]` read that only serves
/// as the list of an `as` whose variable is only ever read by path replaced by those
/// paths. Anything else that reads the list, or the variable used whole, keeps it whole.
pub fn narrowed(reads: &[String], program: &Expr) -> Vec<String> {
    let mut uses = Uses::default();
    uses.expr(program);
    let mut out: BTreeSet<String> = reads.iter().cloned().collect();
    let mut whole = std::mem::take(&mut uses.plain);
    let mut narrow: Vec<(String, Vec<String>)> = Vec::new();
    for (slot, list) in &uses.eaches {
        let text = path_text(list);
        match uses.local.get(slot) {
            Some(paths) if !paths.is_empty() && paths.iter().all(|p| !p.is_empty()) => {
                let fields = paths
                    .iter()
                    .map(|p| path_text(&[list.as_slice(), p.as_slice()].concat()))
                    .collect();
                narrow.push((text, fields));
            }
            _ => {
                whole.insert(text);
            }
        }
    }
    for (text, fields) in narrow {
        if !whole.contains(&text) {
            out.remove(&text);
        }
        out.extend(fields);
    }
    out.into_iter().collect()
}

/// How a program reads its input and its `as` variables.
#[derive(Default)]
struct Uses {
    /// Input paths read other than as the list of an `as`.
    plain: BTreeSet<String>,
    /// `as` variables over an input path ending in `[*]`: slot and that path.
    eaches: Vec<(u32, Vec<PathSeg>)>,
    /// Paths read from each local slot (an empty path: the value whole).
    local: HashMap<u32, Vec<Vec<PathSeg>>>,
}

impl Uses {
    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Lit(_) | Expr::Decimal(_) | Expr::JsonPath(_) => {}
            Expr::Path {
                root: Root::Input,
                path,
            } => {
                self.plain.insert(path_text(path));
            }
            Expr::Path {
                root: Root::Local(slot),
                path,
            } => self.local.entry(*slot).or_default().push(path.clone()),
            Expr::Member(base, _) | Expr::Unary { expr: base, .. } | Expr::Reject(base) => {
                self.expr(base)
            }
            Expr::Index(base, index) => {
                self.expr(base);
                self.expr(index);
            }
            Expr::Lookup { key, .. } | Expr::InTable { key, .. } => self.expr(key),
            Expr::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.expr(then);
                self.expr(otherwise);
            }
            Expr::Call { args: items, .. } | Expr::List(items) => {
                items.iter().for_each(|item| self.expr(item))
            }
            Expr::Record { items, .. } => {
                for item in items {
                    match item {
                        RecordItem::Let(_, value) | RecordItem::Field(_, value) => self.expr(value),
                    }
                }
            }
            Expr::Each {
                source,
                slot,
                filter,
                body,
            } => {
                match source.as_ref() {
                    Expr::Path {
                        root: Root::Input,
                        path,
                    } if path.last() == Some(&PathSeg::All) => {
                        self.eaches.push((*slot, path.clone()));
                    }
                    other => self.expr(other),
                }
                if let Some(filter) = filter {
                    self.expr(filter);
                }
                self.expr(body);
            }
            Expr::Template { vars, .. } => vars.iter().for_each(|(_, value)| self.expr(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(root: Root, segs: &[&str]) -> Expr {
        Expr::Path {
            root,
            path: segs
                .iter()
                .map(|s| match *s {
                    "*" => PathSeg::All,
                    name => PathSeg::Field(name.to_string()),
                })
                .collect(),
        }
    }

    fn each(slot: u32, source: Expr, body: Expr) -> Expr {
        Expr::Each {
            source: Box::new(source),
            slot,
            filter: None,
            body: Box::new(body),
        }
    }

    fn list(items: Vec<Expr>) -> Expr {
        Expr::List(items)
    }

    #[test]
    fn an_as_variable_read_by_field_reads_only_those_fields() {
        let program = each(
            0,
            path(Root::Input, &["items", "*"]),
            list(vec![
                path(Root::Local(0), &["sku"]),
                path(Root::Local(0), &["qty"]),
            ]),
        );
        let reads = vec!["$.items[*]".to_string()];
        assert_eq!(
            narrowed(&reads, &program),
            vec!["$.items[*].qty", "$.items[*].sku"]
        );
    }

    #[test]
    fn a_variable_used_whole_or_a_list_read_elsewhere_keeps_the_elements_whole() {
        let reads = vec!["$.items[*]".to_string()];
        let whole_variable = each(
            0,
            path(Root::Input, &["items", "*"]),
            list(vec![
                path(Root::Local(0), &["sku"]),
                path(Root::Local(0), &[]),
            ]),
        );
        assert_eq!(narrowed(&reads, &whole_variable), vec!["$.items[*]"]);
        let read_elsewhere = list(vec![
            each(
                0,
                path(Root::Input, &["items", "*"]),
                path(Root::Local(0), &["sku"]),
            ),
            Expr::Call {
                func: "count".into(),
                args: vec![path(Root::Input, &["items", "*"])],
            },
        ]);
        assert_eq!(
            narrowed(&reads, &read_elsewhere),
            vec!["$.items[*]", "$.items[*].sku"]
        );
        let unused = each(0, path(Root::Input, &["items", "*"]), Expr::string("x"));
        assert_eq!(narrowed(&reads, &unused), vec!["$.items[*]"]);
    }

    #[test]
    fn nested_lists_of_a_variable_are_read_whole() {
        let program = each(
            0,
            path(Root::Input, &["orders", "*"]),
            each(
                1,
                path(Root::Local(0), &["lines", "*"]),
                path(Root::Local(1), &["sku"]),
            ),
        );
        let reads = vec!["$.orders[*]".to_string()];
        assert_eq!(narrowed(&reads, &program), vec!["$.orders[*].lines[*]"]);
    }
}
