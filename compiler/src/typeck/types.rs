//! Types of the language and the assignability rules between them.

use crate::resolve::{ItemRef, Kind, ModuleId, Program};
use crate::syntax::ast::{Item, TypeExpr, TypeKind};

/// A type as the checker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ty {
    /// Untyped JSON (connector payloads); checked at run time.
    Json,
    Null,
    Bool,
    Int,
    Decimal,
    String,
    /// Integer minor units plus currency.
    Money,
    Datetime,
    Date,
    Duration,
    Rate,
    Percent,
    Secret,
    List(Box<Ty>),
    Record(ItemRef),
    Enum(ItemRef),
    /// A lookup table (only valid as `t[key]` or `x in t`).
    Table(ItemRef),
    /// `reject`: never produces a value.
    Never,
    /// An earlier error; accepted everywhere to avoid cascades.
    Error,
}

impl Ty {
    /// True for types that accept anything without a report.
    pub fn is_lenient(&self) -> bool {
        matches!(self, Ty::Json | Ty::Error | Ty::Never)
    }

    /// Numeric types.
    pub fn is_number(&self) -> bool {
        matches!(self, Ty::Int | Ty::Decimal)
    }

    /// The element type of a list (or JSON for JSON).
    pub fn element(&self) -> Option<Ty> {
        match self {
            Ty::List(elem) => Some((**elem).clone()),
            Ty::Json | Ty::Error => Some(self.clone()),
            _ => None,
        }
    }

    /// A readable name for messages.
    pub fn display(&self, program: &Program) -> String {
        match self {
            Ty::Json => "json".into(),
            Ty::Null => "null".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Decimal => "decimal".into(),
            Ty::String => "string".into(),
            Ty::Money => "money".into(),
            Ty::Datetime => "datetime".into(),
            Ty::Date => "date".into(),
            Ty::Duration => "duration".into(),
            Ty::Rate => "rate".into(),
            Ty::Percent => "percent".into(),
            Ty::Secret => "secret".into(),
            Ty::List(elem) => format!("[{}]", elem.display(program)),
            Ty::Record(item) | Ty::Enum(item) => program
                .item(*item)
                .name()
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            Ty::Table(item) => format!(
                "table `{}`",
                program
                    .item(*item)
                    .name()
                    .map(|n| n.name.as_str())
                    .unwrap_or("")
            ),
            Ty::Never => "never".into(),
            Ty::Error => "unknown".into(),
        }
    }

    /// The IR name of this type.
    pub fn to_ir(&self, program: &Program) -> TypeIr {
        match self {
            Ty::List(elem) => TypeIr::List(Box::new(elem.to_ir(program))),
            Ty::Record(item) => TypeIr::Record(program.ir_name(*item)),
            Ty::Enum(item) => TypeIr::Enum(program.ir_name(*item)),
            other => TypeIr::Scalar(other.display(program)),
        }
    }
}

pub use omniflow_ir::TypeIr;

/// Resolves a written type in a module's scope. Unknown names are reported.
pub fn resolve_type(
    program: &Program,
    module: ModuleId,
    ty: &TypeExpr,
    diags: &mut crate::diagnostics::Diagnostics,
) -> Ty {
    match &ty.kind {
        TypeKind::List(elem) => Ty::List(Box::new(resolve_type(program, module, elem, diags))),
        TypeKind::Named(name) => {
            if let Some(builtin) = builtin(&name.name) {
                return builtin;
            }
            match program.resolve(module, &name.name, name.span, Kind::Type, diags) {
                Some(item) => match program.item(item) {
                    Item::Enum(_) => Ty::Enum(item),
                    _ => Ty::Record(item),
                },
                None => Ty::Error,
            }
        }
    }
}

/// The built-in type with this name.
pub fn builtin(name: &str) -> Option<Ty> {
    Some(match name {
        "string" => Ty::String,
        "int" => Ty::Int,
        "decimal" => Ty::Decimal,
        "bool" => Ty::Bool,
        "money" => Ty::Money,
        "datetime" => Ty::Datetime,
        "date" => Ty::Date,
        "duration" => Ty::Duration,
        "json" => Ty::Json,
        "secret" => Ty::Secret,
        _ => return None,
    })
}

/// Why a value of one type cannot go where another is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Decimal or int into money.
    FloatIntoMoney,
    /// Null into a field that is not optional.
    NullIntoRequired,
    Other,
}

/// Checks that `actual` may be stored where `expected` is required.
pub fn assignable(expected: &Ty, actual: &Ty, optional: bool) -> Result<(), Mismatch> {
    if actual.is_lenient() || matches!(expected, Ty::Json | Ty::Error) {
        return Ok(());
    }
    match (expected, actual) {
        (_, Ty::Null) if optional => Ok(()),
        (_, Ty::Null) => Err(Mismatch::NullIntoRequired),
        (Ty::Money, Ty::Decimal | Ty::Int) => Err(Mismatch::FloatIntoMoney),
        (Ty::Decimal, Ty::Int) => Ok(()),
        // Timestamps arrive as strings in every payload; they are validated at run time.
        (Ty::Datetime | Ty::Date, Ty::String) => Ok(()),
        (Ty::Enum(_), Ty::String) => Ok(()),
        (Ty::String, Ty::Enum(_)) => Ok(()),
        (Ty::List(e), Ty::List(a)) => assignable(e, a, false),
        (e, a) if e == a => Ok(()),
        _ => Err(Mismatch::Other),
    }
}

/// The common type of two branches, if they have one.
pub fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
    match (a, b) {
        (Ty::Never, other) | (other, Ty::Never) => Some(other.clone()),
        (Ty::Null, other) | (other, Ty::Null) => Some(other.clone()),
        (Ty::Error, _) | (_, Ty::Error) => Some(Ty::Error),
        (Ty::Json, _) | (_, Ty::Json) => Some(Ty::Json),
        (Ty::Int, Ty::Decimal) | (Ty::Decimal, Ty::Int) => Some(Ty::Decimal),
        (Ty::String, Ty::Enum(_)) | (Ty::Enum(_), Ty::String) => Some(Ty::String),
        (Ty::List(x), Ty::List(y)) => unify(x, y).map(|t| Ty::List(Box::new(t))),
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

/// Reports (`E0115`) a string that is not a variant of the enum.
pub fn check_variant(
    program: &Program,
    enum_ref: ItemRef,
    text: &str,
    span: crate::source::Span,
    diags: &mut crate::diagnostics::Diagnostics,
) {
    let Item::Enum(decl) = program.item(enum_ref) else {
        return;
    };
    if decl.variants.iter().any(|v| v.name == text) {
        return;
    }
    let help = crate::diagnostics::suggest::did_you_mean(
        text,
        decl.variants.iter().map(|v| v.name.as_str()),
        &format!(
            "`{}` has the variants {}",
            decl.name.name,
            decl.variants
                .iter()
                .map(|v| format!("`{}`", v.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    diags.push(
        crate::diagnostics::Diagnostic::error(
            crate::diagnostics::codes::UNKNOWN_VARIANT,
            span,
            format!("`{text}` is not a variant of `{}`", decl.name.name),
        )
        .label("unknown variant")
        .secondary(decl.name.span, "enum declared here")
        .help(help),
    );
}
