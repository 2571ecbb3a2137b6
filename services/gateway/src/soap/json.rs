//! AppData as the service's REST body and back. An operation's AppData
//! element is converted to JSON by one rule: an element's children become an
//! object keyed by their names in snake_case (`YieldGrams` → `yield_grams`);
//! an element the [`Shape`] names as a list becomes an array of its children
//! (`<Dishes><Dish>…</Dish></Dishes>` → `"dishes": [...]`); a leaf is a
//! string, or a number or boolean where the shape says so. An answer goes the
//! other way (keys in PascalCase, a list under its wrapper with the shape's
//! item name, nulls left out). The XSDs type the elements; the tests check that
//! what this writes passes them.

use quick_xml::escape::partial_escape as escape;
use quick_xml::events::Event;
use serde_json::{Map, Value};

use super::write::GatewayError;

/// What one operation's JSON looks like beyond strings and objects.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// JSON keys that are lists, and the element name of their items.
    pub lists: &'static [(&'static str, &'static str)],
    /// JSON keys whose values are numbers.
    pub numbers: &'static [&'static str],
    /// JSON keys whose values are booleans.
    pub booleans: &'static [&'static str],
}

impl Shape {
    /// The element name of the items of the list `key`, if it is one.
    pub fn item_of(&self, key: &str) -> Option<&'static str> {
        self.lists.iter().find(|(k, _)| *k == key).map(|(_, i)| *i)
    }
}

/// `YieldGrams` → `yield_grams`.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `yield_grams` → `YieldGrams`.
pub fn pascal(key: &str) -> String {
    key.split('_')
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

/// The element at `/Envelope/Body/<op>/MessageData/AppData/<op>` of `body`
/// (read safely and validated before) as a tree.
fn app_data_tree(body: &str, op: &str) -> Option<Node> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut stack: Vec<Node> = Vec::new();
    let target = ["Envelope", "Body", op, "MessageData", "AppData", op];
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name().into_inner().to_string();
                path.push(name.clone());
                if path.len() >= target.len() && path[..target.len()] == target {
                    stack.push(Node {
                        name,
                        ..Node::default()
                    });
                }
            }
            Event::Empty(e) => {
                let name = e.local_name().into_inner().to_string();
                if path.len() >= target.len() - 1
                    && path[..target.len() - 1] == target[..target.len() - 1]
                {
                    let node = Node {
                        name,
                        ..Node::default()
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None if node.name == op => return Some(node),
                        None => {}
                    }
                }
            }
            Event::Text(t) => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(n) = stack.last_mut() {
                    let name = r.xml10_content();
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        n.text.push(c);
                    } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                        n.text.push_str(s);
                    }
                }
            }
            Event::End(_) => {
                let inside = path.len() >= target.len() && path[..target.len()] == target;
                path.pop();
                if inside {
                    let node = stack.pop()?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Some(node),
                    }
                }
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

fn leaf(key: &str, text: &str, shape: &Shape) -> Value {
    let text = text.trim();
    if shape.numbers.contains(&key) {
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
    }
    if shape.booleans.contains(&key) {
        return Value::Bool(text == "true" || text == "1");
    }
    Value::String(text.to_string())
}

fn value(node: &Node, key: &str, shape: &Shape) -> Value {
    if shape.item_of(key).is_some() {
        return Value::Array(
            node.children
                .iter()
                .map(|c| value(c, &snake(&c.name), shape))
                .collect(),
        );
    }
    if node.children.is_empty() {
        return leaf(key, &node.text, shape);
    }
    let mut map = Map::new();
    for c in &node.children {
        let k = snake(&c.name);
        map.insert(k.clone(), value(c, &k, shape));
    }
    Value::Object(map)
}

/// The operation's AppData as the service's REST body.
pub fn request_body(body: &str, op: &str, shape: &Shape) -> Result<Value, GatewayError> {
    let node = app_data_tree(body, op).ok_or_else(|| GatewayError {
        path: Some(format!("/Envelope/Body/{op}/MessageData/AppData/{op}")),
        ..GatewayError::new(
            "SCHEMA_VIOLATION",
            format!("a REQUEST to {op} needs its AppData"),
        )
    })?;
    let mut map = Map::new();
    for c in &node.children {
        let k = snake(&c.name);
        map.insert(k.clone(), value(c, &k, shape));
    }
    Ok(Value::Object(map))
}

fn write_value(out: &mut String, name: &str, key: &str, v: &Value, shape: &Shape) {
    match v {
        Value::Null => {}
        Value::Array(items) => {
            let item = shape.item_of(key).unwrap_or("Item");
            out.push_str(&format!("<tns:{name}>"));
            for i in items {
                write_value(out, item, &snake(item), i, shape);
            }
            out.push_str(&format!("</tns:{name}>"));
        }
        Value::Object(map) => {
            out.push_str(&format!("<tns:{name}>"));
            for (k, v) in map {
                write_value(out, &pascal(k), k, v, shape);
            }
            out.push_str(&format!("</tns:{name}>"));
        }
        Value::String(s) => out.push_str(&format!("<tns:{name}>{}</tns:{name}>", escape(s))),
        Value::Bool(b) => out.push_str(&format!("<tns:{name}>{b}</tns:{name}>")),
        Value::Number(n) => out.push_str(&format!("<tns:{name}>{n}</tns:{name}>")),
    }
}

/// The service's answer as the AppData element `element`.
pub fn answer_xml(element: &str, v: &Value, shape: &Shape) -> String {
    let mut out = String::new();
    write_value(&mut out, element, &snake(element), v, shape);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHAPE: Shape = Shape {
        lists: &[("dishes", "Dish"), ("allergens", "Allergen")],
        numbers: &["yield_grams"],
        booleans: &["closed"],
    };

    #[test]
    fn names_go_both_ways() {
        assert_eq!(snake("YieldGrams"), "yield_grams");
        assert_eq!(pascal("yield_grams"), "YieldGrams");
        assert_eq!(snake("Uin"), "uin");
        assert_eq!(pascal(&snake("MealKind")), "MealKind");
    }

    #[test]
    fn app_data_becomes_the_rest_body() {
        let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:c"><s:Body><c:Up><c:MessageData><c:AppData><c:Up>
            <c:Dishes><c:Dish><c:Id>d-1</c:Id><c:Name>Каша &amp; масло</c:Name><c:YieldGrams>200</c:YieldGrams><c:Allergens><c:Allergen>milk</c:Allergen></c:Allergens></c:Dish>
            <c:Dish><c:Id>d-2</c:Id><c:Name>Чай</c:Name><c:YieldGrams>180</c:YieldGrams><c:Allergens/></c:Dish></c:Dishes>
            <c:Closed>true</c:Closed></c:Up></c:AppData></c:MessageData></c:Up></s:Body></s:Envelope>"#;
        let v = request_body(body, "Up", &SHAPE).unwrap();
        assert_eq!(
            v,
            json!({"dishes": [
                {"id": "d-1", "name": "Каша & масло", "yield_grams": 200, "allergens": ["milk"]},
                {"id": "d-2", "name": "Чай", "yield_grams": 180, "allergens": []}
            ], "closed": true})
        );
    }

    #[test]
    fn an_answer_becomes_app_data() {
        let v = json!({"dishes": [{"id": "d-1", "yield_grams": 200, "allergens": ["milk", "<egg>"], "note": null}]});
        assert_eq!(
            answer_xml("Catalog", &v, &SHAPE),
            "<tns:Catalog><tns:Dishes><tns:Dish><tns:Allergens><tns:Allergen>milk</tns:Allergen><tns:Allergen>&lt;egg&gt;</tns:Allergen></tns:Allergens><tns:Id>d-1</tns:Id><tns:YieldGrams>200</tns:YieldGrams></tns:Dish></tns:Dishes></tns:Catalog>"
        );
    }
}
