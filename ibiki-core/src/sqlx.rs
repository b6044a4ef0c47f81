//! PostgreSQL bindings: both types are `TEXT`, so users can bind them in their
//! own queries (`text` and `text[]` columns).

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use crate::{ClientId, PhoneNumber};

macro_rules! text_type {
    ($ty:ty, $to_text:expr, $from_text:expr) => {
        impl Type<Postgres> for $ty {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $ty {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $ty {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                let text: &dyn Fn(&$ty) -> String = &$to_text;
                <&str as Encode<'_, Postgres>>::encode(text(self).as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $ty {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<'r, Postgres>>::decode(value)?;
                let parse: &dyn Fn(&str) -> Result<$ty, BoxDynError> = &$from_text;
                parse(text)
            }
        }
    };
}

text_type!(PhoneNumber, |n: &PhoneNumber| n.to_string(), |s: &str| Ok(
    PhoneNumber::parse_canonical(s)?
));
text_type!(
    ClientId,
    |c: &ClientId| c.as_str().to_owned(),
    |s: &str| Ok(ClientId::new(s)?)
);
