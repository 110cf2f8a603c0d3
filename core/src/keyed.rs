//! Closed sets of words at the file boundary: an enum that is written as
//! one of its keys, read back only from one of them (serde refuses any
//! other word with the list of valid ones), and described to JSON Schema
//! as that list, so the published schemas cannot drift from the code.

/// `keyed!(Type, key, "what")`: `Type::ALL` lists the variants and
/// `Type::key(self) -> &'static str` names each.
macro_rules! keyed {
    ($ty:ty, $key:ident, $what:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.$key())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = String::deserialize(d)?;
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.$key() == word)
                    .ok_or_else(|| {
                        let keys: Vec<&str> = <$ty>::ALL.iter().map(|v| v.$key()).collect();
                        serde::de::Error::custom(format!(
                            "unknown {} {:?} (expected one of: {})",
                            $what,
                            crate::text::sanitize(&word, 40),
                            keys.join(", ")
                        ))
                    })
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let keys: Vec<&str> = <$ty>::ALL.iter().map(|v| v.$key()).collect();
                schemars::json_schema!({
                    "description": concat!("A ", $what, "."),
                    "type": "string",
                    "enum": keys,
                })
            }
        }
    };
}

pub(crate) use keyed;
