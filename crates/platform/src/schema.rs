//! OpenAPI schemas the API layer gives domain types, so the domain derives no
//! HTTP schema: a domain enum that serializes as its snake_case variant names
//! is described here, from its own serde names.

/// The schema of a string enum: `values` as serde writes them, and a
/// description.
pub fn string_enum<T: serde::Serialize>(
    variants: &[T],
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let values: Vec<serde_json::Value> = variants
        .iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .collect();
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

/// Gives a domain enum its OpenAPI schema in the API layer:
/// `string_enum_schema!(AccountKind: Personal, BankClearing; "What an account is for")`.
/// Every variant must be listed (the macro matches them exhaustively, so a
/// new variant fails to compile until it is); the values are the enum's own
/// serde names.
#[macro_export]
macro_rules! string_enum_schema {
    ($ty:ident : $($variant:ident),+ $(,)? ; $description:expr) => {
        impl $crate::utoipa::PartialSchema for $ty {
            fn schema() -> $crate::utoipa::openapi::RefOr<$crate::utoipa::openapi::schema::Schema> {
                // Exhaustive: a variant missing from the list does not compile.
                fn _listed(v: $ty) {
                    match v {
                        $($ty::$variant)|+ => {}
                    }
                }
                $crate::schema::string_enum(&[$($ty::$variant),+], $description)
            }
        }
        impl $crate::utoipa::ToSchema for $ty {}
    };
}
