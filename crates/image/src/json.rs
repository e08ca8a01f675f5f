//! Canonical JSON: object keys sorted bytewise, no insignificant whitespace.
//! Manifests and configs distill writes go through here so that the same
//! content always gives the same digest, whatever map types produced it and
//! whether or not some crate in the tree enables serde_json's `preserve_order`.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` as canonical JSON.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(val, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let mut inner = HashMap::new();
        for k in ["z", "a", "m", "B"] {
            inner.insert(k.to_string(), vec![k.to_string()]);
        }
        let value = serde_json::json!({"b": inner, "a": [{"y": 1, "x": "é\n"}]});
        let out = String::from_utf8(to_canonical_vec(&value).unwrap()).unwrap();
        assert_eq!(out, r#"{"a":[{"x":"é\n","y":1}],"b":{"B":["B"],"a":["a"],"m":["m"],"z":["z"]}}"#);
    }
}
