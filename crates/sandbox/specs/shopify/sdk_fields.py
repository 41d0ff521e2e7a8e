#!/usr/bin/env python3
"""Writes sdk-fields-2025-07.json: the fields @shopify/shopify-api declares on each REST
resource the sandbox serves (`public name: type;` in rest/admin/2025-07/<resource>.ts), so
the conformance test can hold the kept description to Shopify's own SDK.

usage: npm pack @shopify/shopify-api@15.0.0 && tar xzf shopify-shopify-api-15.0.0.tgz
       sdk_fields.py package/rest/admin/2025-07 sdk-fields-2025-07.json
"""
import json
import re
import sys

RESOURCES = {
    "order": "Order",
    "fulfillment_order": "FulfillmentOrder",
    "fulfillment": "Fulfillment",
    "inventory_level": "InventoryLevel",
    "product": "Product",
    "variant": "Variant",
    "shop": "Shop",
    "webhook": "Webhook",
}


def main():
    folder, out = sys.argv[1:]
    fields = {}
    for file, schema in RESOURCES.items():
        text = open(f"{folder}/{file}.ts").read()
        fields[schema] = sorted(set(re.findall(r"^\s*public (\w+)\??:", text, re.M)))
    doc = {
        "x-source": {
            "package": "npm @shopify/shopify-api@15.0.0 (MIT)",
            "files": "rest/admin/2025-07/<resource>.ts, the `public` fields of each resource class",
        },
        "fields": fields,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


main()
