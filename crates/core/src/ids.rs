//! The ids of the hub's objects, one type each, so that one cannot be passed for another (a
//! delivery's id where an event's is asked for, or a client's where a partner's is, does not
//! compile). An object's id is a UUID (v7, so ids sort by creation), written as its hyphenated
//! text in JSON and as the database's UUID (a 16-byte blob in SQLite, `uuid` in PostgreSQL); a
//! partner's and a client's are the text their owner chose. Either way the bytes stored and the
//! API's shapes are what the bare `Uuid`s and `String`s were.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An id's SQL forms: those of the value it wraps (`rusqlite` and `postgres-types`, behind the
/// features the store turns on).
macro_rules! sql_forms {
    ($name:ident, $inner:ty) => {
        #[cfg(feature = "sqlite")]
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        #[cfg(feature = "sqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                <$inner>::column_result(value).map($name)
            }
        }

        #[cfg(feature = "postgres")]
        impl postgres_types::ToSql for $name {
            fn to_sql(
                &self,
                ty: &postgres_types::Type,
                out: &mut bytes::BytesMut,
            ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &postgres_types::Type) -> bool {
                <$inner as postgres_types::ToSql>::accepts(ty)
            }

            postgres_types::to_sql_checked!();
        }

        #[cfg(feature = "postgres")]
        impl<'a> postgres_types::FromSql<'a> for $name {
            fn from_sql(
                ty: &postgres_types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                <$inner>::from_sql(ty, raw).map($name)
            }

            fn accepts(ty: &postgres_types::Type) -> bool {
                <$inner as postgres_types::FromSql>::accepts(ty)
            }
        }
    };
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new id: a v7 UUID, after every id made before it.
            #[allow(clippy::new_without_default)] // An id is made, never defaulted.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            pub fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map($name)
            }
        }

        sql_forms!($name, Uuid);
    };
}

uuid_id!(
    /// An event: received from a marketplace or published.
    EventId
);
uuid_id!(
    /// A subscription: who gets which events where.
    SubscriptionId
);
uuid_id!(
    /// A delivery: one event owed to one subscription.
    DeliveryId
);
uuid_id!(
    /// A source: one inbound endpoint of one marketplace connection.
    SourceId
);

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        sql_forms!($name, String);
    };
}

text_id!(
    /// A partner (a seller): whose events, subscriptions and sources they are.
    PartnerId
);
text_id!(
    /// An API client: who made a subscription or a source, and who signs in.
    ClientId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_uuid_in_json_and_text() {
        let uuid = Uuid::parse_str("01a24d3d-5696-7566-b253-93391211446d").unwrap();
        let id = EventId::from(uuid);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"01a24d3d-5696-7566-b253-93391211446d\""
        );
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(
            "01a24d3d-5696-7566-b253-93391211446d"
                .parse::<EventId>()
                .unwrap(),
            id
        );
        assert!("not-a-uuid".parse::<DeliveryId>().is_err());
        assert!(DeliveryId::new() < DeliveryId::new());
        let partner = PartnerId::from("seller-1");
        assert_eq!(serde_json::to_string(&partner).unwrap(), "\"seller-1\"");
        assert_eq!(partner, "seller-1");
        assert_eq!("seller-1", partner);
    }
}
