//! Lowering: assembles the checked environment and flows into the graph IR.

use crate::ir::{self, Graph};
use crate::resolve::Program;
use crate::syntax::ast::Item;
use crate::typeck::Env;

/// Builds the graph for the flows of the root modules.
pub fn lower(program: &Program, env: &Env, flows: Vec<ir::Flow>) -> Graph {
    let mut schemas: Vec<ir::Schema> = env
        .schemas
        .iter()
        .map(|(item, schema)| ir::Schema {
            name: program.ir_name(*item),
            fields: schema
                .fields
                .iter()
                .map(|f| ir::SchemaField {
                    name: f.name.clone(),
                    ty: f.ty.to_ir(program),
                    optional: f.optional,
                    default: f.default.clone(),
                })
                .collect(),
        })
        .collect();
    schemas.sort_by(|a, b| a.name.cmp(&b.name));
    schemas.dedup_by(|a, b| a.name == b.name);
    let mut connections: Vec<ir::Connection> =
        env.connections.values().map(|c| c.ir.clone()).collect();
    connections.sort_by(|a, b| a.name.cmp(&b.name));
    let mut policies: Vec<ir::RetryPolicy> = env.policies.values().cloned().collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    policies.dedup_by(|a, b| a.name == b.name);
    let mut tables: Vec<ir::Table> = env
        .tables
        .iter()
        .filter_map(|(item, table)| {
            let Item::Table(decl) = program.item(*item) else {
                return None;
            };
            Some(ir::Table {
                name: decl.name.name.clone(),
                entries: table.entries.clone(),
            })
        })
        .collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut enums: Vec<ir::EnumDef> = program
        .modules
        .iter()
        .enumerate()
        .flat_map(|(m, module)| {
            module.ast.items.iter().enumerate().map(move |(i, item)| {
                (
                    crate::resolve::ItemRef {
                        module: crate::resolve::ModuleId(m as u32),
                        item: i as u32,
                    },
                    item,
                )
            })
        })
        .filter_map(|(item_ref, item)| match item {
            Item::Enum(decl) => Some(ir::EnumDef {
                name: program.ir_name(item_ref),
                variants: decl.variants.iter().map(|v| v.name.clone()).collect(),
            }),
            _ => None,
        })
        .collect();
    enums.sort_by(|a, b| a.name.cmp(&b.name));
    enums.dedup_by(|a, b| a.name == b.name);
    let mut ledgers: Vec<ir::Ledger> = env.ledgers.values().cloned().collect();
    ledgers.sort_by(|a, b| a.name.cmp(&b.name));
    Graph {
        compiler_version: ir::COMPILER_VERSION.to_string(),
        schemas,
        enums,
        connections,
        policies,
        tables,
        flows,
        ledgers,
    }
}
