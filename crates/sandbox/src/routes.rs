//! The routes each simulator serves, named as the vendor's description names them. A
//! simulator answers only these (anything else is its vendor's 404), and the conformance
//! test checks every one of them, with and without credentials.

/// A method and a path template whose `{name}` parts match one non-empty segment part.
pub type Route = (&'static str, &'static str);

/// Shopify's GraphQL Admin API.
pub const SHOPIFY_GRAPHQL: &[Route] = &[("POST", "/admin/api/{version}/graphql.json")];

/// Shopify Admin REST.
pub const SHOPIFY: &[Route] = &[
    ("GET", "/admin/api/{version}/orders.json"),
    ("GET", "/admin/api/{version}/orders/{order_id}.json"),
    (
        "GET",
        "/admin/api/{version}/orders/{order_id}/fulfillment_orders.json",
    ),
    ("POST", "/admin/api/{version}/fulfillments.json"),
    ("GET", "/admin/api/{version}/inventory_levels.json"),
    ("POST", "/admin/api/{version}/inventory_levels/set.json"),
    ("POST", "/admin/api/{version}/inventory_levels/adjust.json"),
    ("GET", "/admin/api/{version}/shop.json"),
    ("GET", "/admin/api/{version}/products.json"),
    ("GET", "/admin/api/{version}/products/{product_id}.json"),
    ("PUT", "/admin/api/{version}/products/{product_id}.json"),
    ("GET", "/admin/api/{version}/variants/{variant_id}.json"),
    ("PUT", "/admin/api/{version}/variants/{variant_id}.json"),
    ("POST", "/admin/api/{version}/webhooks.json"),
];

/// Amazon SP-API (Orders v0, Listings Items 2021-08-01, Reports 2021-06-30).
pub const AMAZON: &[Route] = &[
    ("GET", "/orders/v0/orders"),
    ("GET", "/orders/v0/orders/{orderId}"),
    ("GET", "/orders/v0/orders/{orderId}/orderItems"),
    ("POST", "/orders/v0/orders/{orderId}/shipmentConfirmation"),
    ("PATCH", "/listings/2021-08-01/items/{sellerId}/{sku}"),
    ("GET", "/reports/2021-06-30/reports"),
    ("GET", "/reports/2021-06-30/documents/{reportDocumentId}"),
];

/// Square Connect v2.
pub const SQUARE: &[Route] = &[
    ("GET", "/v2/locations"),
    ("GET", "/v2/locations/{location_id}"),
    ("POST", "/v2/orders"),
    ("POST", "/v2/orders/search"),
    ("GET", "/v2/orders/{order_id}"),
    ("POST", "/v2/inventory/changes/batch-create"),
    ("POST", "/v2/inventory/counts/batch-retrieve"),
    ("GET", "/v2/inventory/{catalog_object_id}"),
    ("GET", "/v2/catalog/object/{object_id}"),
    ("POST", "/v2/catalog/object"),
    ("POST", "/v2/webhooks/subscriptions"),
];

/// ShipBob (every version it serves under the same paths).
pub const SHIPBOB: &[Route] = &[
    ("POST", "/{version}/order"),
    ("GET", "/{version}/order"),
    ("GET", "/{version}/order/{orderId}"),
    ("GET", "/{version}/order/{orderId}/shipment"),
    ("GET", "/{version}/inventory-level"),
    ("GET", "/{version}/inventory-level/locations"),
    ("POST", "/{version}/webhook"),
    ("POST", "/{version}/shipment:batchUpdateTrackingUpload"),
];

/// The template of the first of `routes` that `method path` takes, if any.
pub fn find(routes: &[Route], method: &str, path: &str) -> Option<&'static str> {
    routes
        .iter()
        .find(|(m, template)| *m == method && matches(template, path))
        .map(|(_, template)| *template)
}

/// True when `path` has the template's segments, each literal equal and each `{name}` part
/// standing for at least one character between the literal text around it.
pub fn matches(template: &str, path: &str) -> bool {
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if segment(w, g) => {}
            _ => return false,
        }
    }
}

fn segment(template: &str, segment: &str) -> bool {
    let (Some(open), Some(close)) = (template.find('{'), template.find('}')) else {
        return template == segment;
    };
    let (prefix, suffix) = (&template[..open], &template[close + 1..]);
    segment.len() > prefix.len() + suffix.len()
        && segment.starts_with(prefix)
        && segment.ends_with(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_segments_only() {
        let one = "/admin/api/{version}/orders/{order_id}.json";
        assert!(matches(one, "/admin/api/2025-07/orders/42.json"));
        assert!(!matches(one, "/admin/api/2025-07/orders/.json"));
        assert!(!matches(one, "/admin/api/2025-07/orders/42"));
        assert!(!matches(one, "/admin/api/2025-07/orders/42.json/x"));
        assert_eq!(
            find(
                SHOPIFY,
                "GET",
                "/admin/api/2025-07/orders/42/fulfillment_orders.json"
            ),
            Some("/admin/api/{version}/orders/{order_id}/fulfillment_orders.json")
        );
        assert_eq!(
            find(SHOPIFY, "DELETE", "/admin/api/2025-07/orders/42.json"),
            None
        );
        assert_eq!(
            find(SQUARE, "GET", "/v2/inventory/ABC"),
            Some("/v2/inventory/{catalog_object_id}")
        );
        assert_eq!(
            find(SQUARE, "GET", "/v2/inventory/counts/batch-retrieve"),
            None
        );
        // A template read as a path takes its own route.
        for routes in [SHOPIFY, SHOPIFY_GRAPHQL, AMAZON, SQUARE, SHIPBOB] {
            for (method, template) in routes {
                assert_eq!(find(routes, method, template), Some(*template));
            }
        }
    }
}
