//! Typed, borrowing reading of upstream JSON that is as forgiving as walking a
//! `serde_json::Value`.
//!
//! The Jira and GitHub parsers deserialise a response body straight into small structs
//! built from these types: strings borrow from the body (`Cow`: a string with escapes is
//! copied), numbers are kept as `serde_json` reads them, and every key a struct does not
//! name is skipped without being built. Each type accepts any JSON value, and a value of
//! another type reads as absent, never as an error — exactly what a
//! `value.get("x").and_then(Value::as_str)` chain did — so an odd issue cannot fail a page
//! the `Value` walk accepted. A key given twice: the last one wins, as in a
//! `serde_json::Map`.
//!
//! Objects are declared with [`lenient_object!`]; a reader that needs settings (the names
//! of configured fields) implements [`ObjectSeed`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Number;

/// The non-container values of a visitor that wants a container: they read as `Default`.
macro_rules! scalars_read_as_default {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    };
}

/// One JSON value read for what it is when it is not a container: absent (the key was not
/// there), null, a boolean, a number, a string (borrowed when it has no escapes), or an
/// object or array (skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar<'a> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    /// An object or an array, skipped without being built.
    Container,
}

impl Scalar<'_> {
    /// A string, empty or not (`Value::as_str`).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A non-empty string.
    pub fn text(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.is_empty())
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Scalar::Number(n) => Some(n),
            _ => None,
        }
    }

    /// `Value::as_u64`: an integer that fits (not `7.0`).
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    /// `Value::as_i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// There, and not null (`value.get(k).is_some_and(|v| !v.is_null())`).
    pub fn is_set(&self) -> bool {
        !matches!(self, Scalar::Absent | Scalar::Null)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Number(v.into()))
            }
            // As `serde_json::Value` reads it: a float that is no JSON number is null.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Number::from_f64(v).map_or(Scalar::Null, Scalar::Number))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(Scalar::Container)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(Scalar::Container)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object key, borrowed from the body unless it has escapes.
pub struct Key<'a>(Cow<'a, str>);

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// Reads the entries of a JSON object into a value; any other JSON value (and an absent
/// key) reads as `Default`. [`object`] runs it.
pub trait ObjectSeed<'de> {
    type Value: Default;
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error>;
}

/// Reads one value with `seed`: an object through it, anything else as `Default`.
pub fn object<'de, D: Deserializer<'de>, S: ObjectSeed<'de>>(
    d: D,
    seed: S,
) -> Result<S::Value, D::Error> {
    struct V<S>(S);
    impl<'de, S: ObjectSeed<'de>> Visitor<'de> for V<S> {
        type Value = S::Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        scalars_read_as_default!();
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq)?;
            Ok(Default::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(map)
        }
    }
    d.deserialize_any(V(seed))
}

/// An [`ObjectSeed`] as a `DeserializeSeed`, to read a map value with it.
pub struct AsObject<S>(pub S);

impl<'de, S: ObjectSeed<'de>> DeserializeSeed<'de> for AsObject<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        object(d, self.0)
    }
}

/// Declares a struct read from a JSON object, field by field from the keys named; other
/// keys are skipped, a value that is no object reads as `Default`.
///
/// ```text
/// lenient_object! {
///     struct Status<'a> {
///         name: Scalar<'a> = "name",
///         category: Obj<Keyed<'a>> = "statusCategory",
///     }
/// }
/// ```
macro_rules! lenient_object {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident<$a:lifetime> {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $key:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name<$a> {
            $( $(#[$fmeta])* $field: $ty, )*
        }

        impl<'de: $a, $a> ::serde::Deserialize<'de> for $name<$a> {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Seed<$a>(::std::marker::PhantomData<&$a ()>);
                impl<'de: $a, $a> $crate::sources::lenient::ObjectSeed<'de> for Seed<$a> {
                    type Value = $name<$a>;
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(key) =
                            map.next_key::<$crate::sources::lenient::Key<'de>>()?
                        {
                            match key.as_str() {
                                $( $key => out.$field = map.next_value()?, )*
                                _ => {
                                    map.next_value::<::serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                $crate::sources::lenient::object(d, Seed(::std::marker::PhantomData))
            }
        }
    };
}
pub(crate) use lenient_object;

/// A key whose value is read as `T` when it is an object; whether it was there, and null,
/// is kept too (`value.get(k)` returning `Some(Value::Null)` is not always `None`).
#[derive(Debug, Default)]
pub enum Obj<T> {
    #[default]
    Absent,
    Null,
    Object(T),
    /// A string, number, boolean or array, skipped.
    Other,
}

impl<T> Obj<T> {
    /// The object, if it is one (`value.get(k)` followed by `.get(..)`s).
    pub fn get(&self) -> Option<&T> {
        match self {
            Obj::Object(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Obj::Absent)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Obj::Null)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Obj::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Obj::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Obj::Other)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(if v.is_finite() { Obj::Other } else { Obj::Null })
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Obj::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Obj::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Obj::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(Obj::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj::Object)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The elements of an array; any other value reads as no elements.
#[derive(Debug)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_read_as_default!();
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(List::default())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The first element of an array (the rest skipped); `None` for an empty array or any
/// other value.
#[derive(Debug)]
pub struct First<T>(pub Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_read_as_default!();
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(First::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element()?;
                IgnoredAny.visit_seq(seq)?;
                Ok(First(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(First::default())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A list entry that is either a string (kept as it is, even empty) or an object named by
/// its non-empty `name` (Jira labels, components and versions; GitHub labels).
#[derive(Debug, Default)]
pub struct NameOrText<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for NameOrText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = NameOrText<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_read_as_default!();
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(NameOrText(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(NameOrText(Some(Cow::Borrowed(v))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(NameOrText(Some(Cow::Owned(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(NameOrText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut name = Scalar::Absent;
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.as_str() == "name" {
                        name = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(NameOrText(match name {
                    Scalar::Str(s) if !s.is_empty() => Some(s),
                    _ => None,
                }))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Whether a key is there, whatever its value (null included); the value is skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    lenient_object! {
        struct Person<'a> {
            name: Scalar<'a> = "name",
            boss: Obj<Boss<'a>> = "boss",
            tags: List<NameOrText<'a>> = "tags",
            first: First<Scalar<'a>> = "first",
            seen: Present = "seen",
        }
    }

    lenient_object! {
        struct Boss<'a> {
            name: Scalar<'a> = "name",
        }
    }

    fn read(json: &str) -> Person<'_> {
        serde_json::from_str(json).expect("any JSON reads")
    }

    #[test]
    fn strings_borrow_unless_they_have_escapes() {
        let p = read(r#"{"name": "plain", "boss": {"name": "Ren\u00e9e \"R\""}}"#);
        assert!(matches!(p.name, Scalar::Str(Cow::Borrowed("plain"))));
        let boss = p.boss.get().expect("an object");
        assert!(matches!(&boss.name, Scalar::Str(Cow::Owned(s)) if s == "Renée \"R\""));
    }

    #[test]
    fn values_of_another_type_read_as_absent_and_unknown_keys_are_skipped() {
        for json in [
            r#"{"name": {"x": [1, {"y": null}]}, "boss": "no", "tags": {"name": "t"}, "first": 3}"#,
            r#"{"name": [], "boss": [{"name": "b"}], "tags": "t", "first": {}}"#,
            r#"{"name": null, "boss": 5, "tags": null, "first": null, "other": {"deep": [[]]}}"#,
        ] {
            let p = read(json);
            assert_eq!(p.name.text(), None, "{json}");
            assert!(p.boss.get().is_none(), "{json}");
            assert!(p.tags.0.is_empty(), "{json}");
            assert!(p.first.0.is_none(), "{json}");
            assert!(!p.seen.0, "{json}");
        }
        for json in ["null", "7", "\"text\"", "[{\"name\": \"x\"}]", "true"] {
            let p = read(json);
            assert!(p.name == Scalar::Absent, "{json}");
        }
    }

    #[test]
    fn null_absent_and_other_values_are_told_apart() {
        let p = read(r#"{"name": null, "boss": null, "seen": null}"#);
        assert_eq!(p.name, Scalar::Null);
        assert!(!p.name.is_set());
        assert!(p.boss.is_null() && !p.boss.is_absent());
        assert!(p.seen.0, "present, although null");
        let p = read(r#"{"name": [], "boss": "x"}"#);
        assert!(p.name.is_set());
        assert!(matches!(p.boss, Obj::Other));
        assert!(read("{}").boss.is_absent());
    }

    #[test]
    fn lists_keep_strings_and_named_objects_and_the_last_duplicate_key_wins() {
        let p = read(
            r#"{"name": "a", "name": "b",
                "tags": ["", "x", {"name": ""}, {"name": "y", "id": 1}, {"name": 2}, [], null, {"name": "n1", "name": "n2"}],
                "first": ["f", "g"]}"#,
        );
        assert_eq!(p.name.text(), Some("b"));
        let tags: Vec<Option<&str>> = p.tags.0.iter().map(|t| t.0.as_deref()).collect();
        assert_eq!(
            tags,
            [
                Some(""),
                Some("x"),
                None,
                Some("y"),
                None,
                None,
                None,
                Some("n2")
            ]
        );
        assert_eq!(p.first.0.as_ref().and_then(Scalar::as_str), Some("f"));
    }

    #[test]
    fn numbers_are_read_as_serde_json_reads_them() {
        #[derive(Deserialize)]
        struct N<'a> {
            #[serde(borrow)]
            n: Vec<Scalar<'a>>,
        }
        let text = r#"{"n": [7, -7, 7.0, 18446744073709551615, 1.5e300, 12345678901234567890123]}"#;
        let n: N = serde_json::from_str(text).expect("numbers");
        let v: serde_json::Value = serde_json::from_str(text).expect("numbers");
        for (i, x) in n.n.iter().enumerate() {
            let want = &v["n"][i];
            assert_eq!(x.as_u64(), want.as_u64(), "{i}");
            assert_eq!(x.as_i64(), want.as_i64(), "{i}");
            assert_eq!(
                x.as_number().map(|n| n.to_string()),
                want.as_number().map(|n| n.to_string()),
                "{i}"
            );
        }
    }
}
