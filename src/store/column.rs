//! Columns stored as a plain SQL type and read as a domain type.

/// Lets `$ty` be read from a `$stored` column (through `TryFrom<$stored>`), so a
/// `#[derive(FromRow)]` struct can hold it as it is. (sqlx's `#[sqlx(try_from)]` attribute
/// needs sqlx's `derive` feature, which builds the proc macro with both database drivers: see
/// Cargo.toml.)
#[macro_export]
macro_rules! stored_as {
    ($ty:ty, $stored:ty) => {
        impl ::sqlx::Type<::sqlx::Any> for $ty {
            fn type_info() -> ::sqlx::any::AnyTypeInfo {
                <$stored as ::sqlx::Type<::sqlx::Any>>::type_info()
            }
            fn compatible(ty: &::sqlx::any::AnyTypeInfo) -> bool {
                <$stored as ::sqlx::Type<::sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Any> for $ty {
            fn decode(value: ::sqlx::any::AnyValueRef<'r>) -> Result<Self, ::sqlx::error::BoxDynError> {
                let stored = <$stored as ::sqlx::Decode<'r, ::sqlx::Any>>::decode(value)?;
                Ok(<$ty as ::std::convert::TryFrom<$stored>>::try_from(stored)?)
            }
        }
    };
}
