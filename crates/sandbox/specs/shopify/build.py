#!/usr/bin/env python3
"""Writes admin-rest-2025-07.json: the Shopify Admin REST resources the sandbox serves
(orders, fulfillment orders, fulfillments, inventory levels, products, variants, the shop,
webhooks) as an OpenAPI 3.0 description. Shopify publishes no machine-readable description of its REST API; the field
names come from @shopify/shopify-api@15.0.0 rest/admin/2025-07/order.ts (MIT) and the REST
reference's example order (Shopify/shopify-app-js
packages/apps/shopify-api/rest/admin/__tests__/2025-07/order.test.ts at c6fa2a29), the wire
types from the REST reference (ids are numbers, amounts decimal strings, `*_set` money
bags). Every documented field is required (the API writes null or [] when it does not
apply) and the objects are closed."""
import json

S = {"type": "string"}
NS = {"type": "string", "nullable": True}
I = {"type": "integer"}
NI = {"type": "integer", "nullable": True}
B = {"type": "boolean"}
NB = {"type": "boolean", "nullable": True}
N = {"type": "number"}
T = {"type": "string", "format": "date-time"}
NT = {"type": "string", "format": "date-time", "nullable": True}
BAG = {"$ref": "#/components/schemas/MoneyBag"}
NBAG = {"allOf": [BAG], "nullable": True}


def arr(item):
    return {"type": "array", "items": item}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def closed(props, nullable=False):
    out = {"type": "object", "required": sorted(props), "properties": props,
           "additionalProperties": False}
    if nullable:
        out["nullable"] = True
    return out


ADDRESS = {k: NS for k in ["first_name", "last_name", "name", "company", "address1", "address2",
                           "city", "province", "province_code", "zip", "country", "country_code",
                           "phone"]}
ADDRESS.update({"latitude": {"type": "number", "nullable": True},
                "longitude": {"type": "number", "nullable": True}})
CUSTOMER_ADDRESS = {k: v for k, v in ADDRESS.items() if k not in ("latitude", "longitude")}
CUSTOMER_ADDRESS.update({"id": I, "customer_id": I, "country_name": NS, "default": B})
CONSENT = {"type": "object", "nullable": True, "properties": {
    "state": S, "opt_in_level": NS, "consent_updated_at": NT, "consent_collected_from": S},
    "required": ["state"], "additionalProperties": False}
CUSTOMER = {
    "id": I, "email": NS, "created_at": T, "updated_at": T, "first_name": NS, "last_name": NS,
    "state": S, "note": NS, "verified_email": B, "multipass_identifier": NS, "tax_exempt": B,
    "phone": NS, "tags": S, "currency": S, "tax_exemptions": arr(S),
    "email_marketing_consent": CONSENT, "sms_marketing_consent": CONSENT,
    "admin_graphql_api_id": S, "default_address": ref("CustomerAddress"),
}
TAX_LINE = {"title": S, "rate": N, "price": S, "price_set": BAG, "channel_liable": NB}
LINE_ITEM = {
    "id": I, "admin_graphql_api_id": S, "attributed_staffs": arr({"type": "object"}),
    "current_quantity": I, "fulfillable_quantity": I, "fulfillment_service": S,
    "fulfillment_status": NS, "gift_card": B, "grams": I, "name": S, "price": S,
    "price_set": BAG, "product_exists": B, "product_id": NI,
    "properties": arr(closed({"name": S, "value": S})), "quantity": I, "requires_shipping": B,
    "sku": NS, "taxable": B, "title": S, "total_discount": S, "total_discount_set": BAG,
    "variant_id": NI, "variant_inventory_management": NS, "variant_title": NS, "vendor": NS,
    "tax_lines": arr(ref("TaxLine")), "duties": arr({"type": "object"}),
    "discount_allocations": arr(closed({"amount": S, "amount_set": BAG,
                                        "discount_application_index": I})),
}
SHIPPING_LINE = {
    "id": I, "carrier_identifier": NS, "code": NS, "title": S, "source": S, "phone": NS,
    "price": S, "price_set": BAG, "discounted_price": S, "discounted_price_set": BAG,
    "requested_fulfillment_service_id": NS, "tax_lines": arr(ref("TaxLine")),
    "discount_allocations": arr({"type": "object"}),
}
ORDER = {
    "id": I, "admin_graphql_api_id": S, "app_id": NI, "browser_ip": NS,
    "buyer_accepts_marketing": B, "cancel_reason": NS, "cancelled_at": NT, "cart_token": NS,
    "checkout_id": NI, "checkout_token": NS,
    "client_details": closed({k: NS for k in ["accept_language", "browser_ip", "session_hash",
                                              "user_agent"]} | {"browser_height": NI,
                                                                "browser_width": NI}, True),
    "closed_at": NT, "company": {"type": "object", "nullable": True},
    "confirmation_number": NS, "confirmed": B, "contact_email": NS, "created_at": T,
    "currency": S, "current_subtotal_price": S, "current_subtotal_price_set": BAG,
    "current_total_additional_fees_set": NBAG, "current_total_discounts": S,
    "current_total_discounts_set": BAG, "current_total_duties_set": NBAG,
    "current_total_price": S, "current_total_price_set": BAG, "current_total_tax": S,
    "current_total_tax_set": BAG, "customer_locale": NS, "device_id": NI,
    "discount_codes": arr(closed({"code": S, "amount": S, "type": S})),
    "discount_applications": arr({"type": "object"}), "duties_included": B, "email": NS,
    "estimated_taxes": B, "financial_status": NS, "fulfillment_status": NS,
    "landing_site": NS, "landing_site_ref": NS, "location_id": NI,
    "merchant_business_entity_id": S, "merchant_of_record_app_id": NI, "name": S, "note": NS,
    "note_attributes": arr(closed({"name": S, "value": S})), "number": I, "order_number": I,
    "order_status_url": S, "original_total_additional_fees_set": NBAG,
    "original_total_duties_set": NBAG, "payment_gateway_names": arr(S),
    "payment_terms": {"type": "object", "nullable": True}, "phone": NS, "po_number": NS,
    "presentment_currency": S, "processed_at": T, "reference": NS, "referring_site": NS,
    "source_identifier": NS, "source_name": S, "source_url": NS, "subtotal_price": S,
    "subtotal_price_set": BAG, "tags": S, "tax_exempt": B, "tax_lines": arr(ref("TaxLine")),
    "taxes_included": B, "test": B, "token": S,
    "total_cash_rounding_payment_adjustment_set": BAG,
    "total_cash_rounding_refund_adjustment_set": BAG, "total_discounts": S,
    "total_discounts_set": BAG, "total_line_items_price": S, "total_line_items_price_set": BAG,
    "total_outstanding": S, "total_price": S, "total_price_set": BAG,
    "total_shipping_price_set": BAG, "total_tax": S, "total_tax_set": BAG,
    "total_tip_received": S, "total_weight": I, "updated_at": T, "user_id": NI,
    "billing_address": {"allOf": [ref("Address")], "nullable": True},
    "customer": {"allOf": [ref("Customer")], "nullable": True},
    "fulfillments": arr({"type": "object"}), "line_items": arr(ref("LineItem")),
    "refunds": arr({"type": "object"}),
    "shipping_address": {"allOf": [ref("Address")], "nullable": True},
    "shipping_lines": arr(ref("ShippingLine")),
}
MONEY = closed({"amount": S, "currency_code": S})
FO_LINE = {"id": I, "shop_id": I, "fulfillment_order_id": I, "line_item_id": I,
           "inventory_item_id": I, "quantity": I, "fulfillable_quantity": I, "variant_id": I}
FULFILLMENT_ORDER = {
    "id": I, "shop_id": I, "order_id": I, "assigned_location_id": I,
    "assigned_location": closed({"address1": NS, "address2": NS, "city": NS, "country_code": S,
                                 "location_id": I, "name": S, "phone": NS, "province": NS,
                                 "zip": NS}),
    "request_status": S, "status": S, "supported_actions": arr(S),
    "destination": {"type": "object", "nullable": True},
    "line_items": arr(closed(FO_LINE)), "fulfill_at": NT, "fulfill_by": NT,
    "international_duties": {"type": "object", "nullable": True},
    "fulfillment_holds": arr({"type": "object"}),
    "delivery_method": {"type": "object", "nullable": True}, "created_at": T, "updated_at": T,
    "merchant_requests": arr({"type": "object"}),
}
FULFILLMENT = {
    "id": I, "admin_graphql_api_id": S, "created_at": T, "updated_at": T, "location_id": I,
    "name": S, "order_id": I, "origin_address": {"type": "object", "nullable": True},
    "receipt": {"type": "object"}, "service": S, "shipment_status": NS, "status": S,
    "tracking_company": NS, "tracking_number": NS, "tracking_numbers": arr(S),
    "tracking_url": NS, "tracking_urls": arr(S), "line_items": arr(ref("LineItem")),
}
LEVEL = {"inventory_item_id": I, "location_id": I, "available": NI, "updated_at": T,
         "admin_graphql_api_id": S}
VARIANT = {
    "id": I, "product_id": I, "title": S, "price": S, "sku": NS, "position": I,
    "inventory_policy": S, "compare_at_price": NS, "option1": NS, "option2": NS, "option3": NS,
    "created_at": T, "updated_at": T, "taxable": B, "barcode": NS, "fulfillment_service": S,
    "grams": I, "image_id": NI, "inventory_item_id": I, "inventory_management": NS,
    "inventory_quantity": I, "old_inventory_quantity": I, "requires_shipping": B,
    "tax_code": NS, "weight": N, "weight_unit": S, "admin_graphql_api_id": S,
    "presentment_prices": arr({"type": "object"}),
}
PRODUCT = {
    "id": I, "title": S, "body_html": NS, "vendor": S, "product_type": S, "created_at": T,
    "handle": S, "updated_at": T, "published_at": NT, "template_suffix": NS,
    "published_scope": S, "tags": S, "status": S, "admin_graphql_api_id": S,
    "variants": arr(ref("Variant")), "options": arr({"type": "object"}),
    "images": arr({"type": "object"}), "image": {"type": "object", "nullable": True},
}
SHOP = {k: NS for k in [
    "address1", "address2", "city", "country", "country_code", "country_name",
    "customer_email", "domain", "email", "google_apps_domain", "google_apps_login_enabled",
    "money_format", "money_in_emails_format", "money_with_currency_format",
    "money_with_currency_in_emails_format", "phone", "plan_display_name", "plan_name",
    "primary_locale", "province", "province_code", "shop_owner", "source", "tax_shipping",
    "timezone", "weight_unit", "zip"]}
SHOP.update({k: NB for k in [
    "auto_configure_tax_inclusivity", "checkout_api_supported", "county_taxes",
    "eligible_for_payments", "finances", "force_ssl", "has_discounts", "has_gift_cards",
    "has_storefront", "marketing_sms_consent_enabled_at_checkout", "multi_location_enabled",
    "password_enabled", "pre_launch_enabled", "requires_extra_payments_agreement",
    "setup_required", "taxes_included", "transactional_sms_disabled"]})
SHOP.update({"id": I, "name": S, "currency": S, "myshopify_domain": S, "iana_timezone": S,
             "created_at": T, "updated_at": T, "latitude": N, "longitude": N,
             "primary_location_id": I, "enabled_presentment_currencies": arr(S)})
WEBHOOK = {"id": I, "address": S, "topic": S, "created_at": T, "updated_at": T, "format": S,
           "fields": arr(S), "metafield_namespaces": arr(S),
           "private_metafield_namespaces": arr(S), "api_version": S}
ERRORS = {"type": "object", "required": ["errors"], "additionalProperties": False,
          "properties": {"errors": {"oneOf": [S, arr(S), {"type": "object", "additionalProperties":
                                                          {"oneOf": [S, arr(S)]}}]}}}


def answer(schema):
    return {"description": "", "content": {"application/json": {"schema": schema}}}


ERROR_ANSWERS = {str(s): answer(ref("Errors")) for s in (400, 401, 404, 422, 429, 500, 502, 503, 504)}
doc = {
    "openapi": "3.0.3",
    "info": {"title": "Shopify Admin REST API: the resources the sandbox serves", "version": "2025-07"},
    "x-source": {
        "fields": "npm @shopify/shopify-api@15.0.0 rest/admin/2025-07/{order,fulfillment_order,fulfillment,inventory_level,product,variant,shop,webhook}.ts (MIT)",
        "example": "Shopify/shopify-app-js packages/apps/shopify-api/rest/admin/__tests__/2025-07/order.test.ts @ c6fa2a292e484a0df771fce5d839977855b46afe",
        "types": "https://shopify.dev/docs/api/admin-rest/2025-07/resources/order",
        "note": "written from the documented fields; Shopify publishes no OpenAPI for REST",
    },
    "paths": {
        "/admin/api/{version}/orders.json": {"get": {"operationId": "listOrders", "responses": {
            "200": answer(closed({"orders": arr(ref("Order"))})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/orders/{order_id}.json": {"get": {"operationId": "getOrder",
            "responses": {"200": answer(closed({"order": ref("Order")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/orders/{order_id}/fulfillment_orders.json": {"get": {
            "responses": {"200": answer(closed({"fulfillment_orders": arr(ref("FulfillmentOrder"))})),
                          **ERROR_ANSWERS}}},
        "/admin/api/{version}/fulfillments.json": {"post": {"responses": {
            "201": answer(closed({"fulfillment": ref("Fulfillment")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/inventory_levels.json": {"get": {"responses": {
            "200": answer(closed({"inventory_levels": arr(ref("InventoryLevel"))})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/inventory_levels/set.json": {"post": {"responses": {
            "200": answer(closed({"inventory_level": ref("InventoryLevel")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/inventory_levels/adjust.json": {"post": {"responses": {
            "200": answer(closed({"inventory_level": ref("InventoryLevel")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/shop.json": {"get": {"responses": {
            "200": answer(closed({"shop": ref("Shop")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/products.json": {"get": {"responses": {
            "200": answer(closed({"products": arr(ref("Product"))})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/products/{product_id}.json": {
            "get": {"responses": {"200": answer(closed({"product": ref("Product")})), **ERROR_ANSWERS}},
            "put": {"responses": {"200": answer(closed({"product": ref("Product")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/variants/{variant_id}.json": {
            "get": {"responses": {"200": answer(closed({"variant": ref("Variant")})), **ERROR_ANSWERS}},
            "put": {"responses": {"200": answer(closed({"variant": ref("Variant")})), **ERROR_ANSWERS}}},
        "/admin/api/{version}/webhooks.json": {"post": {"responses": {
            "201": answer(closed({"webhook": ref("Webhook")})), **ERROR_ANSWERS}}},
    },
    "components": {"schemas": {
        "Order": closed(ORDER), "LineItem": closed(LINE_ITEM), "TaxLine": closed(TAX_LINE),
        "ShippingLine": closed(SHIPPING_LINE), "Address": closed(ADDRESS),
        "CustomerAddress": closed(CUSTOMER_ADDRESS), "Customer": closed(CUSTOMER),
        "MoneyBag": closed({"shop_money": ref("Money"), "presentment_money": ref("Money")}),
        "Money": MONEY, "Errors": ERRORS, "FulfillmentOrder": closed(FULFILLMENT_ORDER),
        "Fulfillment": closed(FULFILLMENT), "InventoryLevel": closed(LEVEL),
        "Variant": closed(VARIANT), "Product": closed(PRODUCT), "Shop": closed(SHOP),
        "Webhook": closed(WEBHOOK),
    }},
}
json.dump(doc, open("admin-rest-2025-07.json", "w"), indent=1, sort_keys=True)
print(len(ORDER), "order fields")
