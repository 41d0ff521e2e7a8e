"""Prepares a fresh Tryton database for the connector tests over JSON-RPC (stdlib only):
a company in USD, the admin user on it, and the retail catalogue of flows/data with
100 units of each item in the warehouse storage location.

Usage: seed.py URL DATABASE (the admin password is "admin").
"""
import base64
import json
import sys
import urllib.request

URL, DB = sys.argv[1].rstrip("/"), sys.argv[2]
ITEMS = [
    ("ITM-200105", "Organic Cotton Tote - Natural", "14.00"),
    ("ITM-110857", "Classic Tee #039 - Red / M", "22.00"),
    ("ITM-104578", "Classic Tee #036 - Black / XL", "29.50"),
    ("ITM-100455", "Classic Tee #035 - Grey / L", "22.00"),
    ("ITM-112467", "Dad Cap #009 - Black / XL", "18.00"),
    ("ITM-104242", "Steel Bottle #048 - Black / XS", "24.00"),
    ("ITM-102541", "Crew Socks #014 - Grey / M", "10.99"),
    ("ITM-108848", "Art Print #034 - Navy / XL", "35.00"),
    ("ITM-300711", "Field Jacket #007 - Olive / L", "129.00"),
]


class Rpc:
    def __init__(self):
        self.auth, self.context, self.n = None, {}, 0

    def call(self, method, *params):
        self.n += 1
        body = json.dumps({"id": self.n, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(f"{URL}/{DB}/rpc/", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        if self.auth:
            req.add_header("Authorization", self.auth)
        with urllib.request.urlopen(req, timeout=120) as resp:
            data = json.loads(resp.read())
        if data.get("error"):
            raise SystemExit(f"{method}: {data['error']}")
        return data["result"]

    def model(self, model, method, *args):
        return self.call(f"model.{model}.{method}", *args, self.context)


def dec(text):
    return {"__class__": "Decimal", "decimal": text}


rpc = Rpc()
uid, token, _ = rpc.call("common.db.login", "admin", {"password": "admin"}, "en")
rpc.auth = "Session " + base64.b64encode(f"admin:{uid}:{token}".encode()).decode()

currency = rpc.model("currency.currency", "search", [["code", "=", "USD"]], 0, None, None)
if not currency:
    currency = rpc.model("currency.currency", "create", [{
        "name": "US Dollar", "symbol": "$", "code": "USD", "rounding": dec("0.01"), "digits": 2}])
companies = rpc.model("company.company", "search", [], 0, None, None)
if not companies:
    party = rpc.model("party.party", "create", [{"name": "Omniflow Retail"}])
    companies = rpc.model("company.company", "create", [{"party": party[0], "currency": currency[0]}])
    rpc.model("res.user", "write", [uid], {"companies": [["add", companies]], "company": companies[0]})
prefs = rpc.model("res.user", "get_preferences", True)
rpc.context = {k: prefs[k] for k in ("company", "companies", "language") if k in prefs}

unit = rpc.model("product.uom", "search", [["symbol", "=", "u"]], 0, 1, None)[0]
locations = {r["code"]: r["id"] for r in rpc.model(
    "stock.location", "search_read", [["code", "!=", None]], 0, None, None, ["code"])}
for code, name, price in ITEMS:
    if rpc.model("product.product", "search", [["code", "=", code]], 0, 1, None):
        continue
    template = rpc.model("product.template", "create", [{
        "name": name, "code": code, "type": "goods", "default_uom": unit, "sale_uom": unit,
        "salable": True, "list_price": dec(price),
        "products": [["create", [{"cost_price": dec("5.00")}]]]}])[0]
    product = rpc.model("product.template", "read", [template], ["products"])[0]["products"][0]
    move = rpc.model("stock.move", "create", [{
        "product": product, "unit": unit, "quantity": 100.0,
        "from_location": locations["SUP"], "to_location": locations["STO"],
        "unit_price": dec("5.00"), "currency": currency[0], "company": companies[0]}])
    rpc.model("stock.move", "do", move)
print(f"tryton: seeded {len(ITEMS)} items, company {companies[0]}")
