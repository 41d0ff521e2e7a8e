//! Shopify catalogue writes. `update_price` is `PUT variants/{id}.json` with the price (and
//! compare-at price) as decimal strings in the shop's currency (`GET shop.json`, read once;
//! a price in another currency is refused); `update_product` is
//! `PUT products/{id}.json` with the product's own fields, then `PUT variants/{id}.json`
//! for the barcode and weight its SKUs carry. Both are absolute writes, so a retry after a
//! lost answer writes the same values again.
//!
//! Shopify keys products and variants by its own ids, and REST has no query by SKU: the
//! connector reads the catalogue (`GET products.json?fields=id,variants`, paged by `Link`)
//! into a SKU index once, and reads it again when a SKU is missing and the index is
//! older than a minute. A SKU no variant carries is a permanent failure.
//!
//! Over GraphQL (`api = "graphql"`) the variant is searched by SKU
//! (`productVariants(query: "sku:...")`), the currency read from `shop { currencyCode }`,
//! prices written by `productVariantsBulkUpdate`, and products by `productUpdate` then one
//! `productVariantsBulkUpdate` for barcodes and weights.

use super::{graphql, Store};
use crate::api::ConnectorError;
use crate::client;
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How old the SKU index may be before a missing SKU makes it read again.
const INDEX_FRESH: Duration = Duration::from_secs(60);

/// Where a SKU lives in the shop: (product id, variant id), as Shopify wrote them.
#[derive(Clone, Debug, PartialEq)]
struct Place {
    product: String,
    variant: String,
}

/// The shop's variants by SKU, with when they were read.
#[derive(Default)]
struct Index {
    read_at: Option<Instant>,
    by_sku: HashMap<String, Vec<Place>>,
}

/// A store connection with a SKU index of its catalogue.
struct Catalogue {
    store: Store,
    index: RefCell<Index>,
    /// The shop's currency (`GET shop.json`), once read.
    currency: RefCell<Option<String>>,
}

impl Catalogue {
    fn new(settings: &BTreeMap<String, Value>) -> Result<Catalogue, ConnectorError> {
        Ok(Catalogue {
            store: Store::new(settings)?,
            index: RefCell::new(Index::default()),
            currency: RefCell::new(None),
        })
    }

    /// Refuses a price in another currency than the shop's (Shopify prices carry none).
    async fn check_currency(&self, currency: &str, timeout: Duration) -> Result<(), CallOutcome> {
        let known = self.currency.borrow().clone();
        let shop = match known {
            Some(c) => c,
            None if self.store.graphql => {
                let data = self.store.graphql(SHOP_QUERY, json!({}), timeout).await?;
                let Some(c) = data["shop"]["currencyCode"].as_str().map(String::from) else {
                    return Err(CallOutcome::Permanent {
                        reason: "Shopify's shop names no currency".into(),
                    });
                };
                *self.currency.borrow_mut() = Some(c.clone());
                c
            }
            None => {
                let url = format!("{}/shop.json", self.store.base);
                let request = self.store.request(reqwest::Method::GET, &url);
                let reply = self.store.send(request, timeout).await?;
                let shop = reply.document().map_err(client::unreadable)?;
                let Some(c) = shop["shop"]["currency"].as_str().map(String::from) else {
                    return Err(CallOutcome::Permanent {
                        reason: "Shopify's shop.json names no currency".into(),
                    });
                };
                *self.currency.borrow_mut() = Some(c.clone());
                c
            }
        };
        if shop == currency {
            Ok(())
        } else {
            Err(CallOutcome::Permanent {
                reason: format!("the shop sells in {shop}; the price is in {currency}"),
            })
        }
    }

    /// Reads every product's variants into the index.
    async fn read_index(&self, timeout: Duration) -> Result<(), CallOutcome> {
        let mut by_sku: HashMap<String, Vec<Place>> = HashMap::new();
        let mut url = Some(format!(
            "{}/products.json?limit=250&fields=id,variants",
            self.store.base
        ));
        while let Some(next) = url.take() {
            let request = self.store.request(reqwest::Method::GET, &next);
            let reply = self.store.send(request, timeout).await?;
            let body = reply.document().map_err(client::unreadable)?;
            let products =
                client::list_at(&body, &["products"], false).map_err(client::unreadable)?;
            for product in &products {
                for variant in product["variants"].as_array().into_iter().flatten() {
                    let Some(sku) = variant["sku"].as_str().filter(|s| !s.is_empty()) else {
                        continue;
                    };
                    by_sku.entry(sku.to_string()).or_default().push(Place {
                        product: product["id"].to_string(),
                        variant: variant["id"].to_string(),
                    });
                }
            }
            url = super::next_link(reply.header("link"));
        }
        *self.index.borrow_mut() = Index {
            read_at: Some(Instant::now()),
            by_sku,
        };
        Ok(())
    }

    /// The one variant that carries `sku`.
    async fn place(&self, sku: &str, timeout: Duration) -> Result<Place, CallOutcome> {
        if self.store.graphql {
            return self.find(sku, timeout).await;
        }
        let stale = {
            let index = self.index.borrow();
            !index.by_sku.contains_key(sku)
                && index.read_at.is_none_or(|at| at.elapsed() >= INDEX_FRESH)
        };
        if stale {
            self.read_index(timeout).await?;
        }
        let index = self.index.borrow();
        match index.by_sku.get(sku).map(Vec::as_slice) {
            Some([place]) => Ok(place.clone()),
            Some(places) if places.len() > 1 => Err(CallOutcome::Permanent {
                reason: format!(
                    "SKU {sku} is carried by {} Shopify variants; a SKU must name one",
                    places.len()
                ),
            }),
            _ => Err(CallOutcome::Permanent {
                reason: format!("no Shopify variant has the SKU {sku}"),
            }),
        }
    }

    /// The one variant that carries `sku`, searched for over GraphQL (the search matches
    /// words, so the SKU is compared again).
    async fn find(&self, sku: &str, timeout: Duration) -> Result<Place, CallOutcome> {
        let variables = json!({"query": graphql::search_term("sku", sku)});
        let data = self
            .store
            .graphql(VARIANTS_QUERY, variables, timeout)
            .await?;
        let places: Vec<Place> = data["productVariants"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["sku"] == sku)
            .filter_map(|v| {
                Some(Place {
                    product: v["product"]["id"].as_str()?.to_string(),
                    variant: v["id"].as_str()?.to_string(),
                })
            })
            .collect();
        match places.as_slice() {
            [place] => Ok(place.clone()),
            [] => Err(CallOutcome::Permanent {
                reason: format!("no Shopify variant has the SKU {sku}"),
            }),
            more => Err(CallOutcome::Permanent {
                reason: format!(
                    "SKU {sku} is carried by {} Shopify variants; a SKU must name one",
                    more.len()
                ),
            }),
        }
    }

    /// `productVariantsBulkUpdate` of one product's variants.
    async fn update_variants(
        &self,
        product: &str,
        variants: Vec<Value>,
        timeout: Duration,
    ) -> Result<(), CallOutcome> {
        let variables = json!({"productId": product, "variants": variants});
        let data = self
            .store
            .graphql(VARIANTS_MUTATION, variables, timeout)
            .await?;
        let payload = graphql::payload(&data, "productVariantsBulkUpdate")?;
        graphql::refused(payload, "the variants")
    }

    /// `PUT {resource}/{id}.json` with `{singular: fields}`.
    async fn put(
        &self,
        resource: &str,
        singular: &str,
        id: &str,
        fields: Value,
        timeout: Duration,
    ) -> Result<(), CallOutcome> {
        let mut object = fields;
        object["id"] = serde_json::from_str(id).unwrap_or(Value::String(id.to_string()));
        let body = json!({ singular: object }).to_string();
        let url = format!("{}/{resource}/{id}.json", self.store.base);
        let request = self
            .store
            .request(reqwest::Method::PUT, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.store.send(request, timeout).await.map(|_| ())
    }
}

const SHOP_QUERY: &str = "query Shop { shop { currencyCode } }";

/// Variants whose SKU matches the search; the exact SKU is picked from them.
const VARIANTS_QUERY: &str = "query Variants($query: String!) {
  productVariants(first: 25, query: $query) { nodes { id sku product { id } } }
}";

const VARIANTS_MUTATION: &str =
    "mutation Variants($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id }
    userErrors { code field message }
  }
}";

const PRODUCT_MUTATION: &str = "mutation Product($product: ProductUpdateInput!) {
  productUpdate(product: $product) {
    product { id }
    userErrors { field message }
  }
}";

/// `productUpdate` before 2024-10, which took `input: ProductInput`.
const PRODUCT_MUTATION_INPUT: &str = "mutation Product($product: ProductInput!) {
  productUpdate(input: $product) {
    product { id }
    userErrors { field message }
  }
}";

/// A canonical money value as Shopify's decimal string.
fn price_text(money: &Value, field: &str) -> Result<String, CallOutcome> {
    client::money_text(money).ok_or_else(|| CallOutcome::Permanent {
        reason: format!("the price has no money `{field}`"),
    })
}

/// `shopify.update_price`: the variant with the Price's SKU gets its price (and its
/// compare-at price, when the Price has one).
pub struct UpdatePrice {
    catalogue: Catalogue,
}

impl UpdatePrice {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<UpdatePrice, ConnectorError> {
        Ok(UpdatePrice {
            catalogue: Catalogue::new(settings)?,
        })
    }

    async fn update(&self, price: &Value, timeout: Duration) -> Result<(), CallOutcome> {
        let sku = client::field(price, "sku")?;
        let mut fields = json!({ "price": price_text(&price["amount"], "amount")? });
        for money in [&price["amount"], &price["compare_at"]] {
            if let Some(currency) = money["currency"].as_str() {
                self.catalogue.check_currency(currency, timeout).await?;
            }
        }
        if !price["compare_at"].is_null() {
            fields["compare_at_price"] = json!(price_text(&price["compare_at"], "compare_at")?);
        }
        let place = self.catalogue.place(sku, timeout).await?;
        if self.catalogue.store.graphql {
            let mut variant = json!({"id": place.variant, "price": fields["price"]});
            if let Some(compare_at) = fields.get("compare_at_price") {
                variant["compareAtPrice"] = compare_at.clone();
            }
            return self
                .catalogue
                .update_variants(&place.product, vec![variant], timeout)
                .await;
        }
        self.catalogue
            .put("variants", "variant", &place.variant, fields, timeout)
            .await
    }
}

impl SinkConnector for UpdatePrice {
    fn backoff(&self) -> Option<Duration> {
        self.catalogue.store.backoff()
    }

    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let price = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            match self.update(&price, call.timeout).await {
                Ok(()) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}

/// `shopify.update_product`: the product that carries the Product's SKUs gets its title,
/// status, vendor (brand) and description; each SKU with a barcode or weight updates its
/// variant.
pub struct UpdateProduct {
    catalogue: Catalogue,
}

/// Shopify's product statuses.
const STATUSES: [&str; 3] = ["active", "archived", "draft"];

impl UpdateProduct {
    /// Reads the connection settings.
    pub fn new(settings: &BTreeMap<String, Value>) -> Result<UpdateProduct, ConnectorError> {
        Ok(UpdateProduct {
            catalogue: Catalogue::new(settings)?,
        })
    }

    async fn update(&self, product: &Value, timeout: Duration) -> Result<(), CallOutcome> {
        let id = client::field(product, "id")?;
        let skus = product["skus"].as_array().cloned().unwrap_or_default();
        if skus.is_empty() {
            return Err(CallOutcome::Permanent {
                reason: format!("product {id} has no SKUs to find it by in Shopify"),
            });
        }
        let status = product["status"].as_str().unwrap_or("active");
        if !STATUSES.contains(&status) {
            return Err(CallOutcome::Permanent {
                reason: format!(
                    "product {id} has status `{status}`; Shopify knows active, archived and draft"
                ),
            });
        }
        let mut places = Vec::with_capacity(skus.len());
        for sku in &skus {
            let code = client::field(sku, "code")?;
            places.push((sku, self.catalogue.place(code, timeout).await?));
        }
        let shopify_id = places[0].1.product.clone();
        if let Some((sku, other)) = places.iter().find(|(_, p)| p.product != shopify_id) {
            return Err(CallOutcome::Permanent {
                reason: format!(
                    "product {id}: SKU {} is on Shopify product {}, not {shopify_id}",
                    sku["code"].as_str().unwrap_or_default(),
                    other.product
                ),
            });
        }
        let mut fields = json!({"title": product["title"], "status": status});
        if let Some(brand) = product["brand"].as_str() {
            fields["vendor"] = json!(brand);
        }
        if let Some(description) = product["description"].as_str() {
            fields["body_html"] = json!(description);
        }
        let c = &self.catalogue;
        if c.store.graphql {
            return self
                .update_graphql(&shopify_id, fields, &places, timeout)
                .await;
        }
        c.put("products", "product", &shopify_id, fields, timeout)
            .await?;
        for (sku, place) in places {
            let mut fields = json!({});
            if let Some(barcode) = sku["barcode"].as_str() {
                fields["barcode"] = json!(barcode);
            }
            if let Some(grams) = sku["weight_grams"].as_i64() {
                fields["weight"] = json!(grams);
                fields["weight_unit"] = json!("g");
            }
            if fields.as_object().is_some_and(|f| !f.is_empty()) {
                c.put("variants", "variant", &place.variant, fields, timeout)
                    .await?;
            }
        }
        Ok(())
    }
}

impl UpdateProduct {
    /// `productUpdate`, then one `productVariantsBulkUpdate` for the SKUs' barcodes and
    /// weights.
    async fn update_graphql(
        &self,
        shopify_id: &str,
        fields: Value,
        places: &[(&Value, Place)],
        timeout: Duration,
    ) -> Result<(), CallOutcome> {
        let mut product = json!({"id": shopify_id, "title": fields["title"],
            "status": fields["status"].as_str().unwrap_or("active").to_ascii_uppercase()});
        if let Some(vendor) = fields.get("vendor") {
            product["vendor"] = vendor.clone();
        }
        if let Some(description) = fields.get("body_html") {
            product["descriptionHtml"] = description.clone();
        }
        let c = &self.catalogue;
        let mutation = if c.store.version.as_str() < "2024-10" {
            PRODUCT_MUTATION_INPUT
        } else {
            PRODUCT_MUTATION
        };
        let data = c
            .store
            .graphql(mutation, json!({ "product": product }), timeout)
            .await?;
        graphql::refused(graphql::payload(&data, "productUpdate")?, "the product")?;
        let variants: Vec<Value> = places
            .iter()
            .filter_map(|(sku, place)| {
                let mut variant = json!({"id": place.variant});
                let barcode = sku["barcode"].as_str();
                let grams = sku["weight_grams"].as_i64();
                if let Some(barcode) = barcode {
                    variant["barcode"] = json!(barcode);
                }
                if let Some(grams) = grams {
                    variant["inventoryItem"] = json!({"measurement":
                        {"weight": {"value": grams, "unit": "GRAMS"}}});
                }
                (barcode.is_some() || grams.is_some()).then_some(variant)
            })
            .collect();
        if variants.is_empty() {
            return Ok(());
        }
        c.update_variants(shopify_id, variants, timeout).await
    }
}

impl SinkConnector for UpdateProduct {
    fn backoff(&self) -> Option<Duration> {
        self.catalogue.store.backoff()
    }

    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let product = match client::input(call.body) {
                Ok(v) => v,
                Err(e) => return e,
            };
            match self.update(&product, call.timeout).await {
                Ok(()) => CallOutcome::Ok,
                Err(e) => e,
            }
        })
    }
}
