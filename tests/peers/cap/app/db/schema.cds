namespace omniflow.sales;

using { cuid, managed } from '@sap/cds/common';

entity Products : managed {
  key ID       : String(20);
      name     : String(100) @mandatory;
      price    : Decimal(10, 2);
      currency : String(3) default 'USD';
      stock    : Integer default 0 @assert.range: [0, 1000000];
}

entity SalesOrders : cuid, managed {
  orderNo        : String(80);
  customer       : String(100) @mandatory;
  @assert.range
  status         : String(20) enum { NEW; CONFIRMED; SHIPPED; CANCELLED; } default 'NEW';
  currency       : String(3) default 'USD';
  total          : Decimal(12, 2) @readonly;
  carrier        : String(40);
  trackingNumber : String(60);
  shippedAt      : Timestamp;
  items          : Composition of many SalesOrderItems on items.parent = $self;
}

entity SalesOrderItems : cuid {
  parent   : Association to SalesOrders;
  product  : Association to Products @mandatory;
  quantity : Integer @mandatory @assert.range: [1, 10000];
  price    : Decimal(10, 2);
}
