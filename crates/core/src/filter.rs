//! Content filters: a JSON document a subscription carries (`"filter"`), matched against the
//! envelope a delivery would carry. A plain value means equality; an object whose keys start
//! with `$` is an operator; any other object descends into the field of that name (a dotted key,
//! `"payload.order.status"`, is a path too). An array in the document matches when any of its
//! elements matches (`{"tags": "red"}` matches `{"tags": ["blue", "red"]}`).
//!
//! Operators: `$eq`, `$neq`, `$gt`, `$gte`, `$lt`, `$lte` (numbers, or strings compared as
//! text), `$in`, `$nin` (a list of values), `$exists` (true or false), `$startsWith`,
//! `$endsWith` (strings), `$contains` (a substring of a string, or an element of an array),
//! `$and`, `$or` (lists of filters), `$not` (a filter).
//!
//! [`Filter::parse`] checks a document once (at create and update) and says which path is wrong
//! and why; [`Filter::matches`] never fails.

use serde_json::Value;

/// A checked filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    /// A condition on the value at a path.
    At(Vec<String>, Condition),
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Eq(Value),
    Neq(Value),
    Compare(Ordering, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    StartsWith(String),
    EndsWith(String),
    Contains(Value),
    /// Several conditions on one value (`{"$gte": 1, "$lt": 5}`).
    All(Vec<Condition>),
    /// Conditions on fields below this one.
    Nested(Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ordering {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What is wrong with a filter, and where (`filter.payload.total.$gt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// How deep a filter may nest (operators and fields together).
const MAX_DEPTH: usize = 32;

fn error(path: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        path: path.to_string(),
        message: message.into(),
    }
}

impl Filter {
    /// Checks a filter document.
    pub fn parse(document: &Value) -> Result<Filter, FilterError> {
        match document {
            Value::Object(_) => Ok(Filter(node(document, "filter", 0)?)),
            _ => Err(error("filter", "a filter is a JSON object")),
        }
    }

    /// Whether `document` (a delivery's envelope) passes.
    pub fn matches(&self, document: &Value) -> bool {
        eval(&self.0, document)
    }
}

fn node(value: &Value, path: &str, depth: usize) -> Result<Node, FilterError> {
    if depth > MAX_DEPTH {
        return Err(error(path, format!("nested deeper than {MAX_DEPTH}")));
    }
    let Value::Object(map) = value else {
        return Err(error(path, "expected an object of fields and operators"));
    };
    let mut all = Vec::new();
    for (key, v) in map {
        let here = format!("{path}.{key}");
        match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = v else {
                    return Err(error(&here, "expected a list of filters"));
                };
                if items.is_empty() {
                    return Err(error(&here, "expected at least one filter"));
                }
                let nodes = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| node(item, &format!("{here}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                all.push(if key == "$and" {
                    Node::All(nodes)
                } else {
                    Node::Any(nodes)
                });
            }
            "$not" => all.push(Node::Not(Box::new(node(v, &here, depth + 1)?))),
            k if k.starts_with('$') => {
                return Err(error(
                    &here,
                    "this operator applies to a field; at the top it may only be $and, $or or $not",
                ));
            }
            field => {
                let segments: Vec<String> = field.split('.').map(str::to_string).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(error(&here, "an empty field name"));
                }
                all.push(Node::At(segments, condition(v, &here, depth + 1)?));
            }
        }
    }
    Ok(Node::All(all))
}

fn condition(value: &Value, path: &str, depth: usize) -> Result<Condition, FilterError> {
    if depth > MAX_DEPTH {
        return Err(error(path, format!("nested deeper than {MAX_DEPTH}")));
    }
    let Value::Object(map) = value else {
        return Ok(Condition::Eq(value.clone()));
    };
    let operators = map.keys().filter(|k| k.starts_with('$')).count();
    if operators == 0 {
        return Ok(Condition::Nested(Box::new(node(value, path, depth)?)));
    }
    if operators != map.len() {
        return Err(error(path, "mixes operators and field names"));
    }
    let mut all = Vec::new();
    for (op, v) in map {
        let here = format!("{path}.{op}");
        let text = |v: &Value| -> Result<String, FilterError> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| error(&here, "expected a string"))
        };
        let list = |v: &Value| -> Result<Vec<Value>, FilterError> {
            v.as_array()
                .cloned()
                .ok_or_else(|| error(&here, "expected a list of values"))
        };
        let comparable = |v: &Value| -> Result<Value, FilterError> {
            match v {
                Value::Number(_) | Value::String(_) => Ok(v.clone()),
                _ => Err(error(&here, "expected a number or a string")),
            }
        };
        all.push(match op.as_str() {
            "$eq" => Condition::Eq(v.clone()),
            "$neq" => Condition::Neq(v.clone()),
            "$gt" => Condition::Compare(Ordering::Gt, comparable(v)?),
            "$gte" => Condition::Compare(Ordering::Gte, comparable(v)?),
            "$lt" => Condition::Compare(Ordering::Lt, comparable(v)?),
            "$lte" => Condition::Compare(Ordering::Lte, comparable(v)?),
            "$in" => Condition::In(list(v)?),
            "$nin" => Condition::Nin(list(v)?),
            "$exists" => Condition::Exists(
                v.as_bool()
                    .ok_or_else(|| error(&here, "expected true or false"))?,
            ),
            "$startsWith" => Condition::StartsWith(text(v)?),
            "$endsWith" => Condition::EndsWith(text(v)?),
            "$contains" => Condition::Contains(v.clone()),
            "$not" => Condition::Nested(Box::new(Node::Not(Box::new(Node::At(
                Vec::new(),
                condition(v, &here, depth + 1)?,
            ))))),
            "$and" | "$or" => {
                return Err(error(
                    &here,
                    "$and and $or take whole filters: put them above the field",
                ));
            }
            other => return Err(error(&here, format!("unknown operator {other}"))),
        });
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Condition::All(all)
    })
}

fn eval(node: &Node, document: &Value) -> bool {
    match node {
        Node::All(nodes) => nodes.iter().all(|n| eval(n, document)),
        Node::Any(nodes) => nodes.iter().any(|n| eval(n, document)),
        Node::Not(n) => !eval(n, document),
        Node::At(path, condition) => {
            let mut values = vec![document];
            for segment in path {
                values = values.into_iter().flat_map(|v| step(v, segment)).collect();
            }
            test(condition, &values)
        }
    }
}

/// The values a field name leads to from `value`: through arrays, every element's.
fn step<'a>(value: &'a Value, segment: &str) -> Vec<&'a Value> {
    match value {
        Value::Object(map) => map.get(segment).into_iter().collect(),
        Value::Array(items) => items.iter().flat_map(|i| step(i, segment)).collect(),
        _ => Vec::new(),
    }
}

/// A value and, for an array, each of its elements: what a condition may match.
fn candidates<'a>(values: &[&'a Value]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for v in values {
        out.push(*v);
        if let Value::Array(items) = v {
            out.extend(items.iter());
        }
    }
    out
}

fn test(condition: &Condition, values: &[&Value]) -> bool {
    match condition {
        Condition::Exists(wanted) => values.is_empty() != *wanted,
        Condition::Neq(v) => !candidates(values).into_iter().any(|c| c == v),
        Condition::Nin(list) => !candidates(values).into_iter().any(|c| list.contains(c)),
        Condition::All(conditions) => conditions.iter().all(|c| test(c, values)),
        // Fields below: an array's elements are matched one by one, so all of the nested
        // conditions hold for one element.
        Condition::Nested(node) => values.iter().any(|v| match v {
            Value::Array(items) => items.iter().any(|i| eval(node, i)),
            other => eval(node, other),
        }),
        Condition::Contains(needle) => values.iter().any(|v| match (v, needle) {
            (Value::String(s), Value::String(n)) => s.contains(n.as_str()),
            (Value::Array(items), n) => items.contains(n),
            _ => false,
        }),
        other => candidates(values).into_iter().any(|c| one(other, c)),
    }
}

fn one(condition: &Condition, value: &Value) -> bool {
    match condition {
        Condition::Eq(v) => value == v,
        Condition::Compare(ordering, bound) => match compare(value, bound) {
            Some(o) => match ordering {
                Ordering::Gt => o.is_gt(),
                Ordering::Gte => o.is_ge(),
                Ordering::Lt => o.is_lt(),
                Ordering::Lte => o.is_le(),
            },
            None => false,
        },
        Condition::In(list) => list.contains(value),
        Condition::StartsWith(prefix) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        Condition::EndsWith(suffix) => value.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
        _ => false,
    }
}

fn compare(value: &Value, bound: &Value) -> Option<std::cmp::Ordering> {
    match (value, bound) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope() -> Value {
        json!({
            "source": {"eventType": "PO_CREATED", "eventId": "e-1"},
            "payload": {
                "shipNode": "DFW-1",
                "total": 120.5,
                "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}],
                "tags": ["gift", "rush"],
                "note": null,
            }
        })
    }

    fn passes(filter: Value) -> bool {
        Filter::parse(&filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&envelope())
    }

    #[test]
    fn every_operator_on_nested_paths_arrays_and_missing_fields() {
        let cases = [
            (json!({"payload": {"shipNode": "DFW-1"}}), true),
            (json!({"payload.shipNode": "DFW-1"}), true),
            (json!({"payload.shipNode": "ATL-2"}), false),
            (json!({"payload.shipNode": {"$eq": "DFW-1"}}), true),
            (json!({"payload.shipNode": {"$neq": "DFW-1"}}), false),
            (json!({"payload.total": {"$gt": 100}}), true),
            (json!({"payload.total": {"$gte": 120.5}}), true),
            (json!({"payload.total": {"$lt": 120.5}}), false),
            (json!({"payload.total": {"$lte": 120.5, "$gt": 120}}), true),
            (json!({"payload.shipNode": {"$gt": "C"}}), true),
            (
                json!({"payload.shipNode": {"$in": ["ATL-2", "DFW-1"]}}),
                true,
            ),
            (
                json!({"payload.shipNode": {"$nin": ["ATL-2", "DFW-1"]}}),
                false,
            ),
            (json!({"payload.missing": {"$exists": false}}), true),
            (json!({"payload.missing": {"$exists": true}}), false),
            (json!({"payload.note": {"$exists": true}}), true),
            (json!({"payload.shipNode": {"$startsWith": "DFW"}}), true),
            (json!({"payload.shipNode": {"$endsWith": "-2"}}), false),
            (json!({"payload.shipNode": {"$contains": "FW"}}), true),
            (json!({"payload.tags": {"$contains": "rush"}}), true),
            (json!({"payload.tags": "gift"}), true),
            (json!({"payload.tags": {"$nin": ["gift"]}}), false),
            (json!({"payload.lines.sku": "B"}), true),
            (json!({"payload.lines.qty": {"$gt": 1}}), true),
            (json!({"payload.lines": {"sku": "B", "qty": 1}}), true),
            (json!({"payload.lines": {"sku": "B", "qty": 2}}), false),
            (json!({"payload.missing": "x"}), false),
            (json!({"payload.missing": {"$neq": "x"}}), true),
            (json!({"payload.total": {"$gt": "100"}}), false),
            (
                json!({"$and": [{"payload.total": {"$gt": 100}}, {"source.eventType": "PO_CREATED"}]}),
                true,
            ),
            (
                json!({"$or": [{"payload.total": {"$gt": 1000}}, {"payload.shipNode": "DFW-1"}]}),
                true,
            ),
            (
                json!({"$or": [{"payload.total": {"$gt": 1000}}, {"payload.shipNode": "X"}]}),
                false,
            ),
            (json!({"$not": {"payload.shipNode": "DFW-1"}}), false),
            (
                json!({"payload.shipNode": {"$not": {"$startsWith": "ATL"}}}),
                true,
            ),
            (json!({}), true),
        ];
        for (filter, expected) in cases {
            assert_eq!(passes(filter.clone()), expected, "{filter}");
        }
    }

    #[test]
    fn invalid_filters_name_the_path_and_the_problem() {
        let cases = [
            (json!([1]), "filter", "a JSON object"),
            (
                json!({"payload.total": {"$gt": [1]}}),
                "filter.payload.total.$gt",
                "number or a string",
            ),
            (
                json!({"payload.total": {"$between": 1}}),
                "filter.payload.total.$between",
                "unknown operator",
            ),
            (json!({"$or": {}}), "filter.$or", "list of filters"),
            (json!({"$or": []}), "filter.$or", "at least one"),
            (json!({"$gt": 1}), "filter.$gt", "applies to a field"),
            (
                json!({"payload": {"$eq": 1, "x": 2}}),
                "filter.payload",
                "mixes operators",
            ),
            (
                json!({"payload.x": {"$exists": "yes"}}),
                "filter.payload.x.$exists",
                "true or false",
            ),
            (
                json!({"payload.x": {"$in": 3}}),
                "filter.payload.x.$in",
                "list of values",
            ),
            (
                json!({"payload..x": 1}),
                "filter.payload..x",
                "empty field name",
            ),
            (
                json!({"$and": [{"a": {"$startsWith": 3}}]}),
                "filter.$and[0].a.$startsWith",
                "a string",
            ),
        ];
        for (filter, path, message) in cases {
            let e = Filter::parse(&filter).expect_err(&filter.to_string());
            assert_eq!(e.path, path, "{filter}: {e}");
            assert!(e.message.contains(message), "{filter}: {e}");
        }
        let mut deep = json!({"a": 1});
        for _ in 0..40 {
            deep = json!({"$not": deep});
        }
        assert!(Filter::parse(&deep).is_err());
    }
}
