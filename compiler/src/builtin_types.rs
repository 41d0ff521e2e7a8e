//! Names of the built-in scalar types, below both name resolution (which offers them
//! when a type name is unknown) and the type checker.

/// Names of the built-in scalar types.
pub const BUILTIN_TYPES: &[&str] = &[
    "string", "int", "decimal", "bool", "money", "datetime", "date", "duration", "json", "secret",
];
