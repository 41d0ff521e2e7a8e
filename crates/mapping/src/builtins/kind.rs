//! Tests of a value's kind, answered by reference.

use crate::value::Val;

pub(super) fn is_object(value: &Val) -> bool {
    matches!(value, Val::Obj(_) | Val::Money(..))
}

pub(super) fn is_string(value: &Val) -> bool {
    matches!(value, Val::Str(_))
}

pub(super) fn is_number(value: &Val) -> bool {
    matches!(value, Val::Int(_) | Val::Dec(_))
}

pub(super) fn is_list(value: &Val) -> bool {
    matches!(value, Val::List(_))
}

pub(super) fn is_null(value: &Val) -> bool {
    value.is_null()
}

pub(super) fn exists(value: &Val) -> bool {
    !value.is_null()
}
