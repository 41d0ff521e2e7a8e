//! Shopify's GraphQL Admin API, the part an integration reads, written from Shopify's
//! GraphQL Admin reference and its rate-limit page: `POST /admin/api/{version}/graphql.json`
//! with `{"query", "variables", "operationName"}`; the query root's `shop`, `order(id:)`
//! and `orders(first|last, after|before, query, sortKey, reverse)` connections (`nodes`,
//! `edges { cursor node }`, `pageInfo`), an order's `lineItems` connection and money bags;
//! the mutation `inventorySetQuantities` (compare-and-set unless `ignoreCompareQuantity`,
//! `userErrors` with their codes, the `@idempotent(key:)` directive replaying a key's first
//! result), the stock the REST inventory levels show. An order's `fulfillmentOrders` and
//! `fulfillmentCreate` are in `fulfilment`; `productVariants(query: "sku:...")`,
//! `productUpdate` and `productVariantsBulkUpdate` in `catalogue`: both on the records the
//! REST API serves.
//!
//! Calls are limited by calculated query cost (scalars 0, objects 1, a connection 2 plus
//! its page size times its node's cost) against a leaky bucket of 2,000 points restored
//! at 100 points a second (a quarter under the `throttled` profile); a query over 1,000
//! points is refused (`MAX_COST_EXCEEDED`), one the bucket cannot pay is `THROTTLED`, and
//! every answer reports `extensions.cost`. Unknown fields and wrong arguments are GraphQL
//! errors in a 200 answer, as Shopify gives them.

mod catalogue;
mod fulfilment;

use super::{FulfillmentOrder, Order, Shared, State, System};
use base64::Engine;
use graphql_parser::query::{
    parse_query, Definition, Document, Field, OperationDefinition, Selection, SelectionSet,
    Value as GqlValue,
};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// The deepest nesting of braces, parentheses and brackets a query may have.
const MAX_DEPTH: usize = 32;
/// The most errors one answer lists.
const MAX_ERRORS: usize = 50;

/// How deep a query's brackets nest (strings skipped).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'{' | b'(' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b'}' | b')' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Points the bucket holds.
pub const MAXIMUM_AVAILABLE: f64 = 2000.0;
/// Points restored a second.
pub const RESTORE_RATE: f64 = 100.0;
/// The largest cost one query may ask for.
pub const MAX_QUERY_COST: f64 = 1000.0;
/// The largest page of a connection.
const MAX_PAGE: i64 = 250;

/// The calculated-cost bucket of the app on the shop.
#[derive(Debug)]
pub struct Bucket {
    available: f64,
    at: Instant,
    /// Each `@idempotent` key's first mutation: its arguments and the payload it answered.
    idempotent: std::collections::HashMap<String, (Value, Value)>,
}

impl Default for Bucket {
    fn default() -> Bucket {
        Bucket {
            available: MAXIMUM_AVAILABLE,
            at: Instant::now(),
            idempotent: Default::default(),
        }
    }
}

/// What a mutation costs, whatever it selects.
const MUTATION_COST: f64 = 10.0;

impl Bucket {
    /// Sets the points available now.
    pub fn set(&mut self, points: f64) {
        self.available = points;
        self.at = Instant::now();
    }
}

type Vars = Map<String, Value>;

/// A GraphQL error as Shopify words it.
fn error(message: String, code: &str) -> Value {
    json!({"message": message, "extensions": {"code": code}})
}

/// Serves one GraphQL request (the access token was checked by the caller).
pub fn serve(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = super::json_body(req) else {
        return Resp::json(
            400,
            json!({"errors": {"query": "Required parameter missing or invalid"}}),
        );
    };
    let Some(text) = body["query"].as_str() else {
        return Resp::json(
            400,
            json!({"errors": {"query": "Required parameter missing or invalid"}}),
        );
    };
    let variables = body["variables"].as_object().cloned().unwrap_or_default();
    if nesting(text) > MAX_DEPTH {
        let message = format!(
            "Query has depth of more than {MAX_DEPTH}, which exceeds max depth of {MAX_DEPTH}"
        );
        return Resp::json(
            200,
            json!({"errors": [error(message, "MAX_DEPTH_EXCEEDED")]}),
        );
    }
    // The parser is a library's: an input it cannot handle is a parse error here, never a
    // crashed sandbox.
    let parsed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_query::<String>(text)));
    let document = match parsed {
        Ok(Ok(document)) => document,
        Err(_) => {
            return Resp::json(
                200,
                json!({"errors": [error("Parse error: the query could not be read".into(), "parseError")]}),
            )
        }
        Ok(Err(e)) => {
            let message = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("syntax error")
                .to_string();
            return Resp::json(
                200,
                json!({"errors": [error(format!("Parse error: {message}"), "parseError")]}),
            );
        }
    };
    let (set, vars, mutation) =
        match operation(&document, body["operationName"].as_str(), variables) {
            Ok(found) => found,
            Err(e) => return Resp::json(200, json!({ "errors": [e] })),
        };
    if has_fragments(set) {
        let message = "Fragments are not served by this sandbox; write the fields out".to_string();
        return Resp::json(200, json!({"errors": [error(message, "undefinedField")]}));
    }
    let scale = sb.quota_scale(System::Shopify);
    let (maximum, rate) = (MAXIMUM_AVAILABLE * scale, RESTORE_RATE * scale);
    // Each mutation field is charged.
    let requested = if mutation {
        MUTATION_COST * fields(set).count().max(1) as f64
    } else {
        cost(set, &vars)
    };
    let status = |available: f64| json!({"maximumAvailable": maximum, "currentlyAvailable": available.floor(), "restoreRate": rate});
    // A query the bucket could never pay is refused, not throttled for ever.
    let max_cost = MAX_QUERY_COST.min(maximum);
    if requested > max_cost {
        let message = format!(
            "Query cost is {requested}, which exceeds the single query max cost limit ({max_cost})."
        );
        return Resp::json(
            200,
            json!({"errors": [error(message, "MAX_COST_EXCEEDED")]}),
        );
    }
    let available = {
        let mut st = sb.shopify.borrow_mut();
        let bucket = &mut st.graphql;
        let now = Instant::now();
        bucket.available =
            (bucket.available + now.duration_since(bucket.at).as_secs_f64() * rate).min(maximum);
        bucket.at = now;
        if bucket.available < requested {
            let available = bucket.available;
            drop(st);
            sb.bump(System::Shopify, "throttled");
            return Resp::json(
                200,
                json!({
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null,
                        "throttleStatus": status(available)}}
                }),
            );
        }
        bucket.available -= requested;
        bucket.available
    };
    let mut errors = Vec::new();
    let mut actual = 0.0;
    let data = if mutation {
        actual = requested;
        let version = req.path.split('/').nth(3).unwrap_or("");
        mutate(sb, set, &vars, version, &mut errors)
    } else {
        let st = sb.shopify.borrow();
        let root = Root { st: &st };
        root.select(set, &vars, &mut errors, &mut actual)
    };
    // The difference between what was asked for and what was read is given back.
    let actual = actual.min(requested);
    let available = {
        let mut st = sb.shopify.borrow_mut();
        st.graphql.available = (available + requested - actual).min(maximum);
        st.graphql.available
    };
    sb.bump(System::Shopify, "graphql_queries");
    let cost = json!({"requestedQueryCost": requested, "actualQueryCost": actual,
        "throttleStatus": status(available)});
    let mut answer = json!({ "extensions": {"cost": cost} });
    if errors.is_empty() {
        answer["data"] = data;
    } else {
        // A query is validated once, not per node: each error is reported once, and a
        // few dozen at most.
        let mut seen = std::collections::HashSet::new();
        let errors: Vec<Value> = errors
            .into_iter()
            .filter(|e| seen.insert(e.to_string()))
            .take(MAX_ERRORS)
            .collect();
        answer["errors"] = Value::Array(errors);
        answer["data"] = Value::Null;
    }
    Resp::json(200, answer)
}

/// The operation to run and its variables (defaults filled in).
fn operation<'d>(
    document: &'d Document<'d, String>,
    name: Option<&str>,
    mut given: Vars,
) -> Result<(&'d SelectionSet<'d, String>, Vars, bool), Value> {
    let mut found = None;
    for definition in &document.definitions {
        let Definition::Operation(op) = definition else {
            continue;
        };
        let (op_name, set, defs, mutation) = match op {
            OperationDefinition::SelectionSet(set) => (None, set, &[][..], false),
            OperationDefinition::Query(q) => (
                q.name.as_deref(),
                &q.selection_set,
                &q.variable_definitions[..],
                false,
            ),
            OperationDefinition::Mutation(m) => (
                m.name.as_deref(),
                &m.selection_set,
                &m.variable_definitions[..],
                true,
            ),
            OperationDefinition::Subscription(_) => {
                return Err(error(
                    "Subscriptions are not served over HTTP".into(),
                    "undefinedField",
                ))
            }
        };
        if name.is_some() && name != op_name {
            continue;
        }
        if found.is_some() {
            return Err(error(
                "An operation name is required when the document holds several".into(),
                "operationNotFound",
            ));
        }
        for def in defs {
            if given.get(&def.name).is_none_or(Value::is_null) {
                if let Some(default) = &def.default_value {
                    given.insert(def.name.clone(), to_json(default, &Vars::new()));
                } else if matches!(def.var_type, graphql_parser::query::Type::NonNullType(_)) {
                    return Err(error(
                        format!(
                            "Variable ${} of type {} was provided invalid value",
                            def.name, def.var_type
                        ),
                        "INVALID_VARIABLE",
                    ));
                }
            }
        }
        found = Some((set, mutation));
    }
    found
        .map(|(set, mutation)| (set, given, mutation))
        .ok_or_else(|| {
            error(
                format!("No operation named \"{}\"", name.unwrap_or_default()),
                "operationNotFound",
            )
        })
}

/// A GraphQL argument value as JSON, variables resolved.
fn to_json(value: &GqlValue<String>, vars: &Vars) -> Value {
    match value {
        GqlValue::Variable(name) => vars.get(name).cloned().unwrap_or(Value::Null),
        GqlValue::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        GqlValue::Float(f) => json!(f),
        GqlValue::String(s) => Value::String(s.clone()),
        GqlValue::Boolean(b) => Value::Bool(*b),
        GqlValue::Null => Value::Null,
        GqlValue::Enum(e) => Value::String(e.clone()),
        GqlValue::List(items) => Value::Array(items.iter().map(|i| to_json(i, vars)).collect()),
        GqlValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v, vars)))
                .collect(),
        ),
    }
}

fn argument(field: &Field<String>, name: &str, vars: &Vars) -> Value {
    field
        .arguments
        .iter()
        .find(|(n, _)| n == name)
        .map_or(Value::Null, |(_, v)| to_json(v, vars))
}

/// True when a selection uses a fragment anywhere.
fn has_fragments(set: &SelectionSet<String>) -> bool {
    set.items.iter().any(|s| match s {
        Selection::Field(f) => has_fragments(&f.selection_set),
        _ => true,
    })
}

fn fields<'a, 'd>(
    set: &'a SelectionSet<'d, String>,
) -> impl Iterator<Item = &'a Field<'d, String>> {
    set.items.iter().filter_map(|s| match s {
        Selection::Field(f) => Some(f),
        _ => None,
    })
}

/// The requested cost of a selection: scalars 0, objects 1, a connection 2 plus its page
/// size times its node's cost.
fn cost(set: &SelectionSet<String>, vars: &Vars) -> f64 {
    fields(set)
        .map(|f| {
            if f.selection_set.items.is_empty() {
                return 0.0;
            }
            let size = ["first", "last"]
                .iter()
                .find_map(|a| argument(f, a, vars).as_i64());
            match size {
                Some(n) => 2.0 + n.clamp(0, MAX_PAGE) as f64 * node_cost(&f.selection_set, vars),
                None if f.name == "pageInfo" => 0.0,
                None => 1.0 + cost(&f.selection_set, vars),
            }
        })
        .sum()
}

/// A connection's node cost: its `nodes` or `edges { node }` selection.
fn node_cost(set: &SelectionSet<String>, vars: &Vars) -> f64 {
    fields(set)
        .map(|f| match f.name.as_str() {
            "nodes" => 1.0 + cost(&f.selection_set, vars),
            "edges" => fields(&f.selection_set)
                .filter(|e| e.name == "node")
                .map(|n| 1.0 + cost(&n.selection_set, vars))
                .sum(),
            _ => 0.0,
        })
        .fold(1.0, f64::max)
}

struct Root<'s> {
    st: &'s State,
}

impl Root<'_> {
    fn select(
        &self,
        set: &SelectionSet<String>,
        vars: &Vars,
        errors: &mut Vec<Value>,
        actual: &mut f64,
    ) -> Value {
        let mut out = Map::new();
        for field in fields(set) {
            let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
            let value = match field.name.as_str() {
                "__typename" => json!("QueryRoot"),
                "shop" => {
                    *actual += 1.0;
                    select(&shop(), "Shop", &field.selection_set, vars, errors, actual)
                }
                "order" => {
                    let id = argument(field, "id", vars);
                    let found = self
                        .st
                        .orders
                        .iter()
                        .find(|o| Some(gid("Order", o.id)) == id.as_str().map(String::from));
                    match found {
                        Some(o) => {
                            *actual += 1.0;
                            let fos: Vec<&FulfillmentOrder> = self
                                .st
                                .fulfillment_orders
                                .iter()
                                .filter(|fo| fo.order_id == o.id)
                                .collect();
                            select(
                                &order(o, &fos),
                                "Order",
                                &field.selection_set,
                                vars,
                                errors,
                                actual,
                            )
                        }
                        None => Value::Null,
                    }
                }
                "orders" => self.orders(field, vars, errors, actual),
                "productVariants" => {
                    let query = argument(field, "query", vars);
                    let items =
                        catalogue::variants(&self.st.catalogue, query.as_str().unwrap_or(""))
                            .into_iter()
                            .map(|(id, v)| (cursor(&format!("{id:020}"), id), v))
                            .collect();
                    connection(field, "ProductVariant", items, vars, errors, actual)
                }
                other => {
                    errors.push(error(
                        format!("Field '{other}' doesn't exist on type 'QueryRoot'"),
                        "undefinedField",
                    ));
                    Value::Null
                }
            };
            out.insert(key, value);
        }
        Value::Object(out)
    }

    fn orders(
        &self,
        field: &Field<String>,
        vars: &Vars,
        errors: &mut Vec<Value>,
        actual: &mut f64,
    ) -> Value {
        let sort = argument(field, "sortKey", vars);
        let sort = sort.as_str().unwrap_or("ID");
        if !["ID", "CREATED_AT", "UPDATED_AT", "PROCESSED_AT"].contains(&sort) {
            errors.push(error(
                format!("Argument 'sortKey' on Field 'orders' has an invalid value ({sort}). Expected type 'OrderSortKeys'."),
                "argumentLiteralsIncompatible",
            ));
            return Value::Null;
        }
        let filter = Filter::parse(argument(field, "query", vars).as_str().unwrap_or(""));
        let mut fos: std::collections::HashMap<u64, Vec<&FulfillmentOrder>> =
            std::collections::HashMap::new();
        for fo in &self.st.fulfillment_orders {
            fos.entry(fo.order_id).or_default().push(fo);
        }
        let mut rows: Vec<(String, u64, &Order)> = self
            .st
            .orders
            .iter()
            .filter(|o| filter.keeps(o))
            .map(|o| (sort_value(o, sort), o.id, o))
            .collect();
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        if argument(field, "reverse", vars).as_bool() == Some(true) {
            rows.reverse();
        }
        let items: Vec<(String, Value)> = rows
            .iter()
            .map(|(value, id, o)| {
                let of = fos.get(id).map(Vec::as_slice).unwrap_or(&[]);
                (cursor(value, *id), order(o, of))
            })
            .collect();
        connection(field, "Order", items, vars, errors, actual)
    }
}

/// Every field an `inventorySetQuantities` payload can select.
fn set_shape() -> Value {
    json!({"__type": "InventorySetQuantitiesPayload",
        "inventoryAdjustmentGroup": {"__type": "InventoryAdjustmentGroup", "createdAt": "", "reason": "",
            "referenceDocumentUri": null, "changes": [{"__type": "InventoryChange", "name": "", "delta": 0,
                "quantityAfterChange": 0, "item": {"__type": "InventoryItem", "id": ""},
                "location": {"__type": "Location", "id": ""}}]},
        "userErrors": [{"__type": "InventorySetQuantitiesUserError", "field": [], "code": "", "message": ""}]})
}

/// The `@idempotent(key:)` of a mutation field, under the field's name.
fn idempotency_key(field: &Field<String>, vars: &Vars) -> Option<String> {
    field
        .directives
        .iter()
        .find(|d| d.name == "idempotent")
        .and_then(|d| d.arguments.iter().find(|(n, _)| n == "key"))
        .and_then(|(_, v)| {
            to_json(v, vars)
                .as_str()
                .map(|k| format!("{}:{k}", field.name))
        })
}

/// A mutation field's arguments, as the `@idempotent` key's first call is compared with.
fn arguments(field: &Field<String>, vars: &Vars) -> Value {
    Value::Object(
        field
            .arguments
            .iter()
            .map(|(name, value)| (name.clone(), to_json(value, vars)))
            .collect(),
    )
}

/// Runs the mutation root's fields. Every field's name and selection is checked before
/// any is run (a refused document changes nothing); a field with `@idempotent(key:)`
/// replays the first result of its key, or is refused when its arguments differ.
fn mutate(
    sb: &Shared,
    set: &SelectionSet<String>,
    vars: &Vars,
    version: &str,
    errors: &mut Vec<Value>,
) -> Value {
    let mut shapes = Vec::new();
    for field in fields(set) {
        // `@idempotent` exists from 2026-01; `productUpdate(product:)` from 2024-10.
        if version < "2026-01" && field.directives.iter().any(|d| d.name == "idempotent") {
            errors.push(error(
                format!("Directive 'idempotent' is not defined (API version {version})"),
                "undefinedDirective",
            ));
            continue;
        }
        if version < "2024-10"
            && field.name == "productUpdate"
            && field.arguments.iter().any(|(n, _)| n == "product")
        {
            errors.push(error(
                format!("Field 'productUpdate' doesn't accept argument 'product' (API version {version})"),
                "argumentNotAccepted",
            ));
            continue;
        }
        let shape = match field.name.as_str() {
            "inventorySetQuantities" => set_shape(),
            "fulfillmentCreate" => fulfilment::shape(),
            "productUpdate" => catalogue::product_shape(),
            "productVariantsBulkUpdate" => catalogue::variants_shape(),
            other => {
                errors.push(error(
                    format!("Field '{other}' doesn't exist on type 'Mutation'"),
                    "undefinedField",
                ));
                continue;
            }
        };
        let typename = shape["__type"].as_str().unwrap_or("").to_string();
        select(
            &shape,
            &typename,
            &field.selection_set,
            vars,
            errors,
            &mut 0.0,
        );
        shapes.push((field, typename, shape));
    }
    if !errors.is_empty() {
        return Value::Null;
    }
    let mut out = Map::new();
    for (field, typename, shape) in shapes {
        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
        let idempotency = idempotency_key(field, vars);
        let args = arguments(field, vars);
        let first = idempotency
            .as_ref()
            .and_then(|k| sb.shopify.borrow().graphql.idempotent.get(k).cloned());
        let refused = |code: &str, message: &str| {
            let mut refused = shape.clone();
            let error_type = shape["userErrors"][0]["__type"].clone();
            if let Some(members) = refused.as_object_mut() {
                for (name, value) in members.iter_mut() {
                    if name != "__type" {
                        *value = Value::Null;
                    }
                }
            }
            refused["userErrors"] = json!([{"__type": error_type, "field": ["idempotencyKey"],
                "code": code, "message": message}]);
            refused
        };
        let failed = |payload: &Value| {
            payload["userErrors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        };
        let payload = match first {
            // A key whose first attempt was refused stays refused: a retry needs a new key.
            Some((_, first)) if failed(&first) => refused(
                "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
                "The previous attempt with this idempotency key failed. Retry with a new idempotency key.",
            ),
            Some((first_args, first)) if first_args == args => {
                sb.bump(System::Shopify, "idempotent_replays");
                first
            }
            Some(_) => refused(
                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                "The idempotency key was used before with other arguments.",
            ),
            None => {
                let payload = match field.name.as_str() {
                    "inventorySetQuantities" => set_quantities(sb, &argument(field, "input", vars)),
                    "fulfillmentCreate" => {
                        fulfilment::create(sb, &argument(field, "fulfillment", vars))
                    }
                    "productUpdate" => {
                        let product = argument(field, "product", vars);
                        let input = if product.is_null() {
                            argument(field, "input", vars)
                        } else {
                            product
                        };
                        catalogue::update_product(sb, &input)
                    }
                    _ => catalogue::update_variants(
                        sb,
                        &argument(field, "productId", vars),
                        &argument(field, "variants", vars),
                    ),
                };
                if let Some(k) = idempotency {
                    sb.shopify
                        .borrow_mut()
                        .graphql
                        .idempotent
                        .insert(k, (args, payload.clone()));
                }
                payload
            }
        };
        let selected = select(
            &payload,
            &typename,
            &field.selection_set,
            vars,
            errors,
            &mut 0.0,
        );
        out.insert(key, selected);
    }
    Value::Object(out)
}

/// `inventorySetQuantities(input:)`: every quantity is checked first (an item and a
/// location the shop has, a quantity of at least 0, the persisted quantity equal to
/// `compareQuantity` unless `ignoreCompareQuantity`), then all are set together.
fn set_quantities(sb: &Shared, input: &Value) -> Value {
    let user_error = |field: Vec<Value>, code: &str, message: &str| json!({"__type": "InventorySetQuantitiesUserError", "field": field, "code": code, "message": message});
    let refused = |errors: Vec<Value>| json!({"__type": "InventorySetQuantitiesPayload", "inventoryAdjustmentGroup": null, "userErrors": errors});
    let name = input["name"].as_str().unwrap_or("");
    if name != "available" && name != "on_hand" {
        return refused(vec![user_error(
            vec![json!("input"), json!("name")],
            "INVALID_NAME",
            "The quantity name must be either 'available' or 'on_hand'.",
        )]);
    }
    let ignore_compare = input["ignoreCompareQuantity"].as_bool() == Some(true);
    let quantities = input["quantities"].as_array().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    {
        let st = sb.shopify.borrow();
        for (idx, q) in quantities.iter().enumerate() {
            let at = |f: &str| {
                vec![
                    json!("input"),
                    json!("quantities"),
                    json!(idx.to_string()),
                    json!(f),
                ]
            };
            let (item, location) = (
                id_of(&q["inventoryItemId"], "InventoryItem"),
                id_of(&q["locationId"], "Location"),
            );
            let current = item
                .zip(location)
                .and_then(|k| st.levels.get(&k))
                .map(|l| l.0);
            let Some(current) = current else {
                if item.is_none_or(|i| !st.levels.keys().any(|(k, _)| *k == i)) {
                    errors.push(user_error(
                        at("inventoryItemId"),
                        "INVALID_INVENTORY_ITEM",
                        "The specified inventory item could not be found.",
                    ));
                } else {
                    errors.push(user_error(
                        at("locationId"),
                        "INVALID_LOCATION",
                        "The specified location could not be found.",
                    ));
                }
                continue;
            };
            // GraphQL's Int is 32 bits.
            let int = |v: &Value| v.as_i64().filter(|n| i32::try_from(*n).is_ok());
            let Some(quantity) = int(&q["quantity"]) else {
                errors.push(user_error(
                    at("quantity"),
                    "INVALID_QUANTITY",
                    "The quantity must be a 32-bit integer.",
                ));
                continue;
            };
            if quantity < 0 && name == "on_hand" {
                errors.push(user_error(
                    at("quantity"),
                    "INVALID_QUANTITY_NEGATIVE",
                    "The quantity can't be negative.",
                ));
                continue;
            }
            if changes
                .iter()
                .any(|(i, l, _, _)| Some(*i) == item && Some(*l) == location)
            {
                errors.push(user_error(
                    at("inventoryItemId"),
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    "The same inventory item and location are given twice.",
                ));
                continue;
            }
            // From 2026-04, `changeFromQuantity` (null: no check) takes the place of
            // `compareQuantity` and `ignoreCompareQuantity`.
            if let Some(from) = q.get("changeFromQuantity") {
                if !from.is_null() && int(from) != Some(current) {
                    errors.push(user_error(
                        at("changeFromQuantity"),
                        "CHANGE_FROM_QUANTITY_STALE",
                        "The changeFromQuantity argument no longer matches the persisted quantity.",
                    ));
                    continue;
                }
                changes.push((item.unwrap_or(0), location.unwrap_or(0), current, quantity));
                continue;
            }
            if !ignore_compare && int(&q["compareQuantity"]) != Some(current) {
                errors.push(user_error(
                    at("compareQuantity"),
                    "COMPARE_QUANTITY_STALE",
                    "The compareQuantity argument no longer matches the persisted quantity.",
                ));
                continue;
            }
            changes.push((item.unwrap_or(0), location.unwrap_or(0), current, quantity));
        }
    }
    if !errors.is_empty() {
        return refused(errors);
    }
    let ts = super::shop_ts(super::super::now());
    let mut st = sb.shopify.borrow_mut();
    let mut out = Vec::new();
    for (item, location, before, after) in changes {
        st.levels.insert((item, location), (after, ts.clone()));
        out.push(
            json!({"__type": "InventoryChange", "name": name, "delta": after.saturating_sub(before),
            "quantityAfterChange": after,
            "item": {"__type": "InventoryItem", "id": gid("InventoryItem", item)},
            "location": {"__type": "Location", "id": gid("Location", location)}}),
        );
    }
    drop(st);
    sb.bump(System::Shopify, "inventory_updates");
    json!({"__type": "InventorySetQuantitiesPayload", "userErrors": [],
        "inventoryAdjustmentGroup": {"__type": "InventoryAdjustmentGroup", "createdAt": ts,
            "reason": input["reason"], "referenceDocumentUri": input["referenceDocumentUri"],
            "changes": out}})
}

/// A page of a connection: `first`/`after` forwards or `last`/`before` backwards.
fn connection(
    field: &Field<String>,
    typename: &str,
    items: Vec<(String, Value)>,
    vars: &Vars,
    errors: &mut Vec<Value>,
    actual: &mut f64,
) -> Value {
    let (first, last) = (
        argument(field, "first", vars),
        argument(field, "last", vars),
    );
    let size = match (first.as_i64(), last.as_i64()) {
        (None, None) => {
            errors.push(error(
                format!(
                    "you must provide one of first or last (on `{}`)",
                    field.name
                ),
                "argumentLiteralsIncompatible",
            ));
            return Value::Null;
        }
        (Some(n), _) | (None, Some(n)) if !(0..=MAX_PAGE).contains(&n) => {
            errors.push(error(
                format!("The first and last arguments must be within 0 and {MAX_PAGE}"),
                "argumentLiteralsIncompatible",
            ));
            return Value::Null;
        }
        (Some(n), _) | (None, Some(n)) => n as usize,
    };
    // A cursor holds its item's sort value and id: a page goes on from that place, even
    // when the item itself has changed or gone since.
    let keys: Vec<Option<(String, u64)>> = items.iter().map(|(c, _)| cursor_key(c)).collect();
    let ascending = keys.windows(2).all(|w| w[0] <= w[1]);
    // Each item's place against a cursor's key, in the connection's order.
    let order = |k: &Option<(String, u64)>, key: &(String, u64)| {
        k.as_ref()
            .map(|k| if ascending { k.cmp(key) } else { key.cmp(k) })
    };
    let position = |c: &Value| {
        c.as_str().map(|c| {
            let key = cursor_key(c)?;
            let first = |past: fn(std::cmp::Ordering) -> bool| {
                keys.iter()
                    .position(|k| order(k, &key).is_some_and(past))
                    .unwrap_or(keys.len())
            };
            Some((
                first(std::cmp::Ordering::is_gt),
                first(std::cmp::Ordering::is_ge),
            ))
        })
    };
    let start = match position(&argument(field, "after", vars)) {
        Some(Some((after, _))) => after,
        Some(None) => {
            errors.push(error(
                "Invalid cursor for current pagination sort.".into(),
                "invalidCursor",
            ));
            return Value::Null;
        }
        None => 0,
    };
    let end = match position(&argument(field, "before", vars)) {
        Some(Some((_, at))) => at,
        Some(None) => {
            errors.push(error(
                "Invalid cursor for current pagination sort.".into(),
                "invalidCursor",
            ));
            return Value::Null;
        }
        None => items.len(),
    };
    let window = &items[start.min(end)..end];
    let page: &[(String, Value)] = if first.is_i64() {
        &window[..size.min(window.len())]
    } else {
        &window[window.len().saturating_sub(size)..]
    };
    let page_start = start
        + if first.is_i64() {
            0
        } else {
            window.len().saturating_sub(size)
        };
    let page_info = json!({
        "__type": "PageInfo",
        "hasNextPage": page_start + page.len() < items.len(),
        "hasPreviousPage": page_start > 0,
        "startCursor": page.first().map(|(c, _)| c.clone()),
        "endCursor": page.last().map(|(c, _)| c.clone()),
    });
    *actual += 2.0;
    let mut out = Map::new();
    for sub in fields(&field.selection_set) {
        let key = sub.alias.clone().unwrap_or_else(|| sub.name.clone());
        let value = match sub.name.as_str() {
            "nodes" => Value::Array(
                page.iter()
                    .map(|(_, node)| {
                        *actual += 1.0;
                        select(node, typename, &sub.selection_set, vars, errors, actual)
                    })
                    .collect(),
            ),
            "edges" => Value::Array(
                page.iter()
                    .map(|(c, node)| {
                        // The edge's node is charged as it is selected.
                        let edge =
                            json!({"__type": format!("{typename}Edge"), "cursor": c, "node": node});
                        select(
                            &edge,
                            &format!("{typename}Edge"),
                            &sub.selection_set,
                            vars,
                            errors,
                            actual,
                        )
                    })
                    .collect(),
            ),
            "pageInfo" => select(
                &page_info,
                "PageInfo",
                &sub.selection_set,
                vars,
                errors,
                actual,
            ),
            "__typename" => json!(format!("{typename}Connection")),
            other => {
                errors.push(error(
                    format!("Field '{other}' doesn't exist on type '{typename}Connection'"),
                    "undefinedField",
                ));
                Value::Null
            }
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

/// Selects fields of an object (`__type` names its GraphQL type; `__connection` marks a
/// connection's items).
fn select(
    object: &Value,
    typename: &str,
    set: &SelectionSet<String>,
    vars: &Vars,
    errors: &mut Vec<Value>,
    actual: &mut f64,
) -> Value {
    let mut out = Map::new();
    for field in fields(set) {
        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
        if field.name == "__typename" {
            out.insert(key, json!(typename));
            continue;
        }
        let Some(value) = object.get(&field.name) else {
            errors.push(error(
                format!("Field '{}' doesn't exist on type '{typename}'", field.name),
                "undefinedField",
            ));
            continue;
        };
        let child_type = value
            .get("__type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let selected = match (value, field.selection_set.items.is_empty()) {
            (Value::Object(map), false) if map.contains_key("__connection") => {
                let items = map["__connection"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| (cursor(&format!("{i:010}"), i as u64), item.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                connection(field, &child_type, items, vars, errors, actual)
            }
            (Value::Object(_), false) => {
                *actual += 1.0;
                select(
                    value,
                    &child_type,
                    &field.selection_set,
                    vars,
                    errors,
                    actual,
                )
            }
            (Value::Null, _) => Value::Null,
            // A list of objects: each selected.
            (Value::Array(items), false) if items.iter().all(Value::is_object) => Value::Array(
                items
                    .iter()
                    .map(|item| {
                        let typename = item.get("__type").and_then(Value::as_str).unwrap_or("");
                        select(item, typename, &field.selection_set, vars, errors, actual)
                    })
                    .collect(),
            ),
            (Value::Object(_), true) => {
                errors.push(error(
                    format!("Field must have selections (field '{}' returns {child_type} but has no selections.)", field.name),
                    "selectionMismatch",
                ));
                Value::Null
            }
            (_, false) => {
                errors.push(error(
                    format!(
                        "Selections can't be made on scalars (field '{}' returns a scalar)",
                        field.name
                    ),
                    "selectionMismatch",
                ));
                Value::Null
            }
            (scalar, true) => scalar.clone(),
        };
        out.insert(key, selected);
    }
    Value::Object(out)
}

/// The sort value and id an opaque cursor holds.
fn cursor_key(cursor: &str) -> Option<(String, u64)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        value["last_value"].as_str()?.to_string(),
        value["last_id"].as_u64()?,
    ))
}

/// An opaque cursor: the sort value and the id, base64 JSON as Shopify's are.
fn cursor(value: &str, id: u64) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"last_id": id, "last_value": value}).to_string())
}

fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// The REST id of a global id of `kind` (`gid://shopify/KIND/ID`).
fn id_of(value: &Value, kind: &str) -> Option<u64> {
    value
        .as_str()?
        .strip_prefix(&format!("gid://shopify/{kind}/"))?
        .parse()
        .ok()
}

fn sort_value(o: &Order, key: &str) -> String {
    let field = match key {
        "CREATED_AT" => "created_at",
        "UPDATED_AT" => "updated_at",
        "PROCESSED_AT" => "processed_at",
        _ => return format!("{:020}", o.id),
    };
    // Stamps in UTC, so text order is time order.
    let stamp = o.json[field].as_str().unwrap_or("");
    chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()
        })
        .unwrap_or_default()
}

/// The search syntax of `orders(query:)`: `updated_at:>=STAMP`, `created_at:<STAMP`,
/// `status:open|closed|cancelled|any`; other terms are ignored.
struct Filter {
    ranges: Vec<(&'static str, &'static str, chrono::DateTime<chrono::Utc>)>,
    status: Option<String>,
}

impl Filter {
    fn parse(query: &str) -> Filter {
        let mut filter = Filter {
            ranges: Vec::new(),
            status: None,
        };
        for term in query.split_whitespace() {
            let Some((name, rest)) = term.split_once(':') else {
                continue;
            };
            let field = match name {
                "updated_at" => "updated_at",
                "created_at" => "created_at",
                "processed_at" => "processed_at",
                "status" => {
                    filter.status = Some(rest.to_ascii_lowercase());
                    continue;
                }
                _ => continue,
            };
            let (op, value) = [">=", "<=", ">", "<"]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
                .unwrap_or(("=", rest));
            let value = value.trim_matches(|c| c == '\'' || c == '"');
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
                filter
                    .ranges
                    .push((field, op, at.with_timezone(&chrono::Utc)));
            }
        }
        filter
    }

    fn keeps(&self, o: &Order) -> bool {
        let status_ok = match self.status.as_deref() {
            None | Some("any") => true,
            Some("open") => !o.closed && !o.cancelled,
            Some("closed") => o.closed,
            Some("cancelled") => o.cancelled,
            Some(_) => true,
        };
        status_ok
            && self.ranges.iter().all(|(field, op, at)| {
                let Some(stamp) = o.json[*field]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                else {
                    return false;
                };
                let stamp = stamp.with_timezone(&chrono::Utc);
                match *op {
                    ">=" => stamp >= *at,
                    "<=" => stamp <= *at,
                    ">" => stamp > *at,
                    "<" => stamp < *at,
                    _ => stamp == *at,
                }
            })
    }
}

fn money(amount: &Value, currency: &Value) -> Value {
    let bag = json!({"__type": "MoneyV2", "amount": amount, "currencyCode": currency});
    json!({"__type": "MoneyBag", "shopMoney": bag, "presentmentMoney": bag})
}

fn shop() -> Value {
    let rest = super::shop_json();
    json!({"__type": "Shop", "id": gid("Shop", super::SHOP_ID), "name": rest["name"],
        "currencyCode": rest["currency"], "ianaTimezone": rest["iana_timezone"],
        "myshopifyDomain": rest["myshopify_domain"], "email": rest["email"]})
}

fn address(a: &Value) -> Value {
    if a.is_null() {
        return Value::Null;
    }
    json!({"__type": "MailingAddress", "name": a["name"], "firstName": a["first_name"],
        "lastName": a["last_name"], "company": a["company"], "address1": a["address1"],
        "address2": a["address2"], "city": a["city"], "province": a["province"],
        "provinceCode": a["province_code"], "zip": a["zip"], "country": a["country"],
        "countryCodeV2": a["country_code"], "phone": a["phone"]})
}

/// An order as the GraphQL Admin API shows it, from the same record the REST API serves.
fn order(o: &Order, fos: &[&FulfillmentOrder]) -> Value {
    let j = &o.json;
    let currency = &j["currency"];
    let upper = |v: &Value| {
        v.as_str()
            .map(|s| s.to_ascii_uppercase())
            .map_or(Value::Null, Value::String)
    };
    let lines: Vec<Value> = j["line_items"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    json!({"__type": "LineItem", "id": gid("LineItem", l["id"].as_u64().unwrap_or(0)),
                        "sku": l["sku"], "name": l["name"], "title": l["title"], "quantity": l["quantity"],
                        "variantTitle": l["variant_title"], "vendor": l["vendor"],
                        "originalUnitPriceSet": money(&l["price"], currency),
                        "variant": if l["variant_id"].is_null() { Value::Null } else {
                            json!({"__type": "ProductVariant", "id": gid("ProductVariant", l["variant_id"].as_u64().unwrap_or(0)), "sku": l["sku"]})
                        }})
                })
                .collect()
        })
        .unwrap_or_default();
    let customer = &j["customer"];
    let tags: Vec<Value> = j["tags"]
        .as_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| json!(t))
        .collect();
    json!({
        "__type": "Order",
        "id": gid("Order", o.id),
        "legacyResourceId": o.id.to_string(),
        "name": j["name"],
        "email": j["email"],
        "createdAt": j["created_at"],
        "updatedAt": j["updated_at"],
        "processedAt": j["processed_at"],
        "closedAt": j["closed_at"],
        "cancelledAt": j["cancelled_at"],
        "closed": o.closed,
        "displayFinancialStatus": upper(&j["financial_status"]),
        "displayFulfillmentStatus": if j["fulfillment_status"].is_null() { json!("UNFULFILLED") } else { upper(&j["fulfillment_status"]) },
        "currencyCode": currency,
        "note": j["note"],
        "tags": tags,
        "totalPriceSet": money(&j["total_price"], currency),
        "subtotalPriceSet": money(&j["subtotal_price"], currency),
        "totalTaxSet": money(&j["total_tax"], currency),
        "totalDiscountsSet": money(&j["total_discounts"], currency),
        "totalShippingPriceSet": money(&j["total_shipping_price_set"]["shop_money"]["amount"], currency),
        "shippingAddress": address(&j["shipping_address"]),
        "billingAddress": address(&j["billing_address"]),
        "customer": if customer.is_null() { Value::Null } else {
            json!({"__type": "Customer", "id": gid("Customer", customer["id"].as_u64().unwrap_or(0)),
                "email": customer["email"], "firstName": customer["first_name"], "lastName": customer["last_name"]})
        },
        "lineItems": {"__type": "LineItem", "__connection": lines},
        "fulfillments": j["fulfillments"].as_array().map(|list| list.iter().map(|f| {
            let id = f["id"].as_u64().unwrap_or(0);
            json!({"__type": "Fulfillment", "id": gid("Fulfillment", id), "legacyResourceId": id.to_string(),
                "name": f["name"], "status": f["status"].as_str().map(str::to_ascii_uppercase),
                "createdAt": f["created_at"],
                "trackingInfo": f["tracking_numbers"].as_array().map(|numbers| numbers.iter().map(|n| json!(
                    {"__type": "FulfillmentTrackingInfo", "number": n, "company": f["tracking_company"], "url": f["tracking_url"]}
                )).collect::<Vec<_>>()).unwrap_or_default()})
        }).collect::<Vec<_>>()).unwrap_or_default(),
        "fulfillmentOrders": {"__type": "FulfillmentOrder", "__connection":
            fos.iter().map(|fo| fulfilment::fulfillment_order(fo, o)).collect::<Vec<_>>()},
    })
}
